"""The one figure helper: matplotlib on the Agg backend (no display, the same rendering everywhere),
a fixed dpi, and `save_figure`, which writes a figure atomically and closes it.

Every figure module of `lensllm.report` imports `plt` from here, so that the backend is chosen
before pyplot is first imported.
"""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lensllm.atomic import atomic_path  # noqa: E402

DPI = 120
# Without a creation date or the software's version: the same run writes the same bytes.
REPRODUCIBLE_METADATA = {".png": {"Software": None}, ".pdf": {"CreationDate": None, "Producer": None}}

__all__ = ["DPI", "REPRODUCIBLE_METADATA", "plt", "save_figure"]


def save_figure(fig: plt.Figure, path: str | os.PathLike | Sequence[str | os.PathLike], reproducible: bool = False) -> None:
    """Write `fig` to `path`, or to each of a list of paths (PNG or PDF by the extension), atomically,
    and close it. `reproducible`: leave out the creation date and matplotlib's version
    (`REPRODUCIBLE_METADATA`; the paper's figures); otherwise matplotlib's default metadata."""
    for one in [path] if isinstance(path, (str, os.PathLike)) else path:
        extension = os.path.splitext(str(one))[1]
        metadata = {"metadata": REPRODUCIBLE_METADATA.get(extension)} if reproducible else {}
        with atomic_path(one) as tmp:
            fig.savefig(tmp, dpi=DPI, format=extension.lstrip(".") or "png", **metadata)
    plt.close(fig)
