"""The failure of a command line of `lensllm.training` and `lensllm.probes` (`python -m ...`)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def exit_on_error(*errors: type[BaseException]) -> Iterator[None]:
    """Stop the command line on one of `errors` raised in the block: ``error: <message>`` on stderr
    and exit status 2 (`SystemExit`, like argparse's usage errors), no traceback."""
    try:
        yield
    except errors as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
