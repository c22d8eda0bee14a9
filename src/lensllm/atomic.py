"""Atomic file writes: a killed job never leaves a half-written file that looks finished.

`write_text` and `write_bytes` for any file, and the workflow's two record formats: `write_tsv` (a
table, floats to 10 significant digits) and `write_json` (indented JSON records).
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    import pandas as pd

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_tsv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write `frame` as TSV atomically, floats to 10 significant digits (stable across runs)."""
    write_text(path, frame.to_csv(sep="\t", index=False, float_format="%.10g"))


def write_json(value: Any, path: str | os.PathLike) -> None:
    """Write `value` (records as dicts and lists) as JSON indented by one space, atomically."""
    write_text(path, json.dumps(value, indent=1) + "\n")
