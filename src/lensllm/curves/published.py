"""The published fine-tuning loss curves of Lin et al. (2024), fetched and checked.

The curves of 30 models on FLAN, WMT19 and Gigaword are published (Apache-2.0) in the repository
linhaowei1/Fine-tuning-Scaling-Law, pinned here to one commit, each file checked against its sha256.
A local directory holding ``<benchmark>.csv`` can stand in for the download (no checksum then: the
user's own curves are welcome); either way the table is validated before anything uses it.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from lensllm.curves.losstable import LossTable, read_losstable, restrict_params, write_losstable
from lensllm.atomic import atomic_path

CURVES_URL = (
    "https://raw.githubusercontent.com/linhaowei1/Fine-tuning-Scaling-Law/"
    "5214568013af65e3cefd03860ecd7bc9358b308c/benchmark/"
)
CURVES_SHA256 = {
    "flan": "ead24af8eaa97ac0507bbd76c4880eb09c6361e252f4971666ba55017215d1e9",
    "gigaword": "7d0b08ef9df06eefb4355f859fb44e7860c1e55effd781d318d60a1f8661f2b3",
    "wmt19": "523b044495f87c1f954c359fb489cf4e38f739c7fca8161d70665853fb2d293a",
}


class ChecksumError(ValueError):
    """A downloaded file whose sha256 is not the pinned one."""


def download(url: str, sha256: str, destination: str | os.PathLike, timeout: float = 60.0) -> Path:
    """Download `url` to `destination` atomically, after checking its sha256."""
    destination = Path(destination)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as err:
        raise ConnectionError(
            f"cannot download {url}: {err}. Without network access, pass a directory of curves "
            f"with --config curves_dir=DIR (it must hold {destination.name})"
        ) from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ChecksumError(f"{url}: sha256 {digest} does not match the pinned {sha256}; the file was not saved")
    with atomic_path(destination) as tmp:
        tmp.write_bytes(data)
    return destination


def fetch_curves(
    benchmark: str,
    output: str | os.PathLike,
    *,
    curves_dir: str | os.PathLike | None = None,
    base_url: str = CURVES_URL,
    sha256: dict[str, str] | None = None,
    max_params: float | None = None,
) -> LossTable:
    """Get the curves of `benchmark`, validate them and write them as a TSV loss table to `output`.

    Downloads ``<base_url>/<benchmark>.csv`` (kept, checked, in ``<output dir>/downloads/``), or
    reads ``<curves_dir>/<benchmark>.csv`` when `curves_dir` is given. `base_url` may be a
    ``file://`` URL. With `max_params`, only the models with fewer parameters are kept
    (`lensllm.curves.losstable.restrict_params`).
    """
    output = Path(output)
    if curves_dir is not None:
        source = Path(curves_dir) / f"{benchmark}.csv"
        if not source.is_file():
            raise FileNotFoundError(f"{source}: no curves file for benchmark '{benchmark}' in curves_dir {curves_dir}")
        table = read_losstable(source, benchmark)
    else:
        checksums = CURVES_SHA256 if sha256 is None else sha256
        if benchmark not in checksums:
            raise KeyError(f"no pinned sha256 for benchmark '{benchmark}' (known: {', '.join(checksums)})")
        raw = output.parent / "downloads" / f"{benchmark}.csv"
        download(base_url.rstrip("/") + f"/{benchmark}.csv", checksums[benchmark], raw)
        table = read_losstable(raw, benchmark)
    table = restrict_params(table, max_params)
    write_losstable(table, output)
    return table
