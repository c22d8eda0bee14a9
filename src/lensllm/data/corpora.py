"""Raw text sources for the offline benchmarks, fetched from PyPI and Debian only.

Each source is a set of files under a cache directory DEST, recorded with its origin and licence
in ``DEST/SOURCES.json``::

    DEST/
      SOURCES.json                      one record per fetched source (origin, version, licence)
      wiki/enwiki-shortened.xml.bz2     Wikipedia dump excerpt shipped in the gensim wheel
      debsum/Packages.gz                Debian package indices (all configured suites, concatenated)
      debsum/Translation-en.gz          Debian English descriptions (``Description-en``)
      instruct/wordnet/data.{noun,verb,adj,adv}, copyright     from the ``wordnet-base`` package
      instruct/vera/vera.info.gz, copyright                   from the ``vera`` package
      instruct/trans-de-en/de-en, copyright                   from the ``trans-de-en`` package

Fetching is idempotent (a source whose files are all present is skipped, so a DEST copied from
another machine needs no network) and atomic (files are written beside their final path and
renamed). The Debian sources use a private ``apt-get update`` into a temporary folder of DEST, so
the system's apt state is never touched. Nothing is ever taken from the Hugging Face hub.

Command line::

    python -m lensllm.data.corpora fetch --dest DIR [--only wiki,debsum,instruct]
"""

from __future__ import annotations

import argparse
import bz2
import glob
import gzip
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from lensllm.atomic import atomic_path, write_text

MANIFEST = "SOURCES.json"
GENSIM_VERSION = "4.4.0"
GENSIM_MEMBER = (
    "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
)


class SourceUnavailable(RuntimeError):
    """A raw source is missing from the cache directory and cannot be fetched here."""


@dataclass(frozen=True)
class Source:
    """One raw source: the files it puts under DEST, where they come from and their licence."""

    name: str
    files: tuple[str, ...]
    origin: str
    licence: str


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source(
            name="wikipedia",
            files=("wiki/enwiki-shortened.xml.bz2",),
            origin=f"PyPI wheel gensim=={GENSIM_VERSION}, member {GENSIM_MEMBER} "
            "(English Wikipedia dump excerpt, ~106 articles)",
            licence="CC BY-SA 3.0 and GFDL (Wikipedia article text; authors: Wikipedia "
            "contributors)",
        ),
        Source(
            name="debian-descriptions",
            files=("debsum/Packages.gz", "debsum/Translation-en.gz"),
            origin="Debian archive indices (Packages, i18n/Translation-en) of the suites "
            "configured in /etc/apt, via a private `apt-get update`",
            licence="Each description is part of its Debian package and is distributed under "
            "that package's licence (see /usr/share/doc/<package>/copyright); the Debian "
            "archive only ships packages under DFSG-free licences",
        ),
        Source(
            name="wordnet",
            files=tuple(f"instruct/wordnet/data.{pos}" for pos in ("noun", "verb", "adj", "adv"))
            + ("instruct/wordnet/copyright",),
            origin="Debian package wordnet-base (WordNet 3.0 database)",
            licence="WordNet 3.0 licence (Princeton University; permissive, BSD-like)",
        ),
        Source(
            name="vera",
            files=("instruct/vera/vera.info.gz", "instruct/vera/copyright"),
            origin="Debian package vera (V.E.R.A., Virtual Entity of Relevant Acronyms)",
            licence="GFDL 1.1 or later, no invariant sections (GFDL-NIV-1.1+)",
        ),
        Source(
            name="trans-de-en",
            files=("instruct/trans-de-en/de-en", "instruct/trans-de-en/copyright"),
            origin="Debian package trans-de-en (Ding German-English dictionary, TU Chemnitz)",
            licence="GPL-2.0-or-later",
        ),
    )
}

BENCHMARK_SOURCES: dict[str, tuple[str, ...]] = {
    "wiki": ("wikipedia",),
    "debsum": ("debian-descriptions",),
    "instruct": ("wordnet", "vera", "trans-de-en", "debian-descriptions"),
}

# Debian package -> {file inside the package: path relative to DEST}
PACKAGE_FILES: dict[str, tuple[str, dict[str, str]]] = {
    "wordnet": (
        "wordnet-base",
        {
            **{
                f"usr/share/wordnet/data.{pos}": f"instruct/wordnet/data.{pos}"
                for pos in ("noun", "verb", "adj", "adv")
            },
            "usr/share/doc/wordnet-base/copyright": "instruct/wordnet/copyright",
        },
    ),
    "vera": (
        "vera",
        {
            "usr/share/info/vera.info.gz": "instruct/vera/vera.info.gz",
            "usr/share/doc/vera/copyright": "instruct/vera/copyright",
        },
    ),
    "trans-de-en": (
        "trans-de-en",
        {
            "usr/share/trans/de-en": "instruct/trans-de-en/de-en",
            "usr/share/doc/trans-de-en/copyright": "instruct/trans-de-en/copyright",
        },
    ),
}

HOW_TO_FIX = (
    "run `python -m lensllm.data.corpora fetch --dest {dest}` on a machine that reaches PyPI and the "
    "Debian mirrors (with pip, apt-get and dpkg-deb), or copy {dest} from such a machine"
)


def sources_for(benchmarks: Sequence[str]) -> list[str]:
    """The source names needed by `benchmarks`, without duplicates, in a fixed order."""
    unknown = sorted(set(benchmarks) - set(BENCHMARK_SOURCES))
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; known: {sorted(BENCHMARK_SOURCES)}")
    return [name for name in SOURCES if any(name in BENCHMARK_SOURCES[b] for b in benchmarks)]


def is_present(dest: str | os.PathLike, name: str) -> bool:
    """Whether every file of source `name` exists under `dest`."""
    return all((Path(dest) / f).is_file() for f in SOURCES[name].files)


def require(dest: str | os.PathLike, names: Sequence[str]) -> None:
    """Raise `SourceUnavailable` naming the missing files if a source in `names` is absent."""
    for name in names:
        missing = [f for f in SOURCES[name].files if not (Path(dest) / f).is_file()]
        if missing:
            raise SourceUnavailable(
                f"source {name!r} is missing from {dest} (no {', '.join(missing)}); "
                + HOW_TO_FIX.format(dest=dest)
            )


def source_records(dest: str | os.PathLike, names: Sequence[str]) -> list[dict[str, str]]:
    """Origin, licence and (when fetched here) version and date of each source in `names`."""
    manifest = read_manifest(dest)
    records = []
    for name in names:
        source = SOURCES[name]
        record = {"name": name, "origin": source.origin, "licence": source.licence}
        record.update(manifest.get(name, {}))
        records.append(record)
    return records


def read_manifest(dest: str | os.PathLike) -> dict[str, dict[str, str]]:
    """The records of `DEST/SOURCES.json`, keyed by source name (empty when there is none)."""
    path = Path(dest) / MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def _record(dest: Path, name: str, **extra: str) -> None:
    manifest = read_manifest(dest)
    source = SOURCES[name]
    manifest[name] = {
        "origin": source.origin,
        "licence": source.licence,
        "files": list(source.files),
        "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
    write_text(dest / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _run(cmd: Sequence[str], source: str, dest: Path, cwd: Path | None = None) -> str:
    """Run `cmd`; on failure raise `SourceUnavailable` with the command, its error and the fix."""
    try:
        done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as err:
        raise SourceUnavailable(
            f"cannot fetch source {source!r}: `{cmd[0]}` could not be run ({err}); "
            + HOW_TO_FIX.format(dest=dest)
        ) from err
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise SourceUnavailable(
            f"cannot fetch source {source!r}: `{' '.join(cmd)}` exited with {done.returncode}: "
            + " | ".join(tail)
            + "; "
            + HOW_TO_FIX.format(dest=dest)
        )
    return done.stdout


def fetch_wikipedia(dest: Path, *, python: str = sys.executable) -> None:
    """Download the gensim wheel with pip and copy its Wikipedia dump excerpt into `dest`."""
    with tempfile.TemporaryDirectory(dir=dest, prefix=".pip-") as tmp:
        _run(
            [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             f"gensim=={GENSIM_VERSION}", "-d", tmp, "--quiet"],
            "wikipedia",
            dest,
        )
        wheels = sorted(Path(tmp).glob("gensim-*.whl"))
        if not wheels:
            raise SourceUnavailable(
                f"cannot fetch source 'wikipedia': pip gave no gensim wheel in {tmp}; "
                + HOW_TO_FIX.format(dest=dest)
            )
        with zipfile.ZipFile(wheels[0]) as wheel, atomic_path(
            dest / SOURCES["wikipedia"].files[0]
        ) as out:
            out.write_bytes(wheel.read(GENSIM_MEMBER))
    _record(dest, "wikipedia", version=f"gensim {GENSIM_VERSION}")


class PrivateApt:
    """apt-get with its own state, cache and source lists in a folder, leaving the system's alone.

    The source lists are copied from the system's (``/etc/apt/sources.list`` and the ``*.list``
    and ``*.sources`` files of ``/etc/apt/sources.list.d``); `update` runs lazily, once.
    """

    def __init__(self, root: Path, dest: Path, *, apt_get: str = "apt-get",
                 etc: Path = Path("/etc/apt")) -> None:
        self.root, self.dest, self.apt_get, self.etc = root, dest, apt_get, etc
        self._updated = False

    @property
    def lists(self) -> Path:
        """The folder where `update` leaves the downloaded indices."""
        return self.root / "state" / "lists"

    def options(self) -> list[str]:
        """The `-o` options that redirect apt to the private folder."""
        opts = {
            "Dir::State": self.root / "state",
            "Dir::Cache": self.root / "cache",
            "Dir::Etc::SourceList": self.root / "etc" / "sources.list",
            "Dir::Etc::SourceParts": self.root / "etc" / "sources.list.d",
            "Acquire::GzipIndexes": "false",
            "Acquire::Languages": "en",
        }
        if os.geteuid() == 0:  # root's downloads into our folder need not be sandboxed as _apt
            opts["APT::Sandbox::User"] = "root"
        return [arg for key, value in opts.items() for arg in ("-o", f"{key}={value}")]

    def update(self, source: str) -> None:
        """Run the private `apt-get update` (once); `source` names who needs it in errors."""
        if self._updated:
            return
        for sub in ("state/lists/partial", "cache/archives/partial", "etc/sources.list.d"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        main_list = self.etc / "sources.list"
        (self.root / "etc" / "sources.list").write_text(
            main_list.read_text() if main_list.is_file() else ""
        )
        parts = [p for pattern in ("*.list", "*.sources")
                 for p in sorted((self.etc / "sources.list.d").glob(pattern))]
        for part in parts:
            shutil.copy(part, self.root / "etc" / "sources.list.d" / part.name)
        if not parts and not main_list.is_file():
            raise SourceUnavailable(
                f"cannot fetch source {source!r}: no apt source list in {self.etc}; "
                + HOW_TO_FIX.format(dest=self.dest)
            )
        _run([self.apt_get, *self.options(), "update"], source, self.dest)
        self._updated = True

    def download(self, package: str, source: str, into: Path) -> Path:
        """Download the .deb of `package` into `into` and return its path."""
        self.update(source)
        _run([self.apt_get, *self.options(), "download", package], source, self.dest, cwd=into)
        debs = sorted(into.glob(f"{glob.escape(package)}_*.deb"))
        if not debs:
            raise SourceUnavailable(
                f"cannot fetch source {source!r}: apt-get gave no .deb for {package}; "
                + HOW_TO_FIX.format(dest=self.dest)
            )
        return debs[0]


def _read_index(path: Path, source: str, dest: Path) -> bytes:
    """The plain content of an apt index file, decompressing it by its suffix if needed."""
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    if path.suffix == ".xz":
        return lzma.decompress(path.read_bytes())
    if path.suffix == ".bz2":
        return bz2.decompress(path.read_bytes())
    if path.suffix == ".lz4":
        return _run(["lz4", "-dc", str(path)], source, dest).encode()
    return path.read_bytes()


def fetch_debian_descriptions(apt: PrivateApt) -> None:
    """Concatenate the Packages and Translation-en indices of the private apt update."""
    dest = apt.dest
    apt.update("debian-descriptions")
    for pattern, target in (("*_Packages", "debsum/Packages.gz"),
                            ("*_i18n_Translation-en", "debsum/Translation-en.gz")):
        paths = sorted(p for p in apt.lists.glob(pattern + "*") if p.suffix != ".diff_Index")
        if not paths:
            raise SourceUnavailable(
                f"cannot fetch source 'debian-descriptions': the private apt update left no "
                f"{pattern} index in {apt.lists}; " + HOW_TO_FIX.format(dest=dest)
            )
        with atomic_path(dest / target) as out, gzip.open(out, "wb") as gz:
            for path in paths:
                gz.write(_read_index(path, "debian-descriptions", dest).rstrip(b"\n") + b"\n\n")
    _record(dest, "debian-descriptions", suites=", ".join(
        p.name.split("_Packages")[0] for p in sorted(apt.lists.glob("*_Packages*"))))


def fetch_package(apt: PrivateApt, name: str, *, dpkg_deb: str = "dpkg-deb") -> None:
    """Download a Debian package with the private apt and copy the source's files out of it."""
    dest = apt.dest
    package, members = PACKAGE_FILES[name]
    with tempfile.TemporaryDirectory(dir=dest, prefix=f".{name}-") as tmp:
        work = Path(tmp)
        deb = apt.download(package, name, work)
        version = _run([dpkg_deb, "-f", str(deb), "Version"], name, dest).strip()
        _run([dpkg_deb, "-x", str(deb), str(work / "root")], name, dest)
        for member, target in members.items():
            if not (work / "root" / member).is_file():
                raise SourceUnavailable(
                    f"cannot fetch source {name!r}: package {package} {version} has no "
                    f"/{member}; " + HOW_TO_FIX.format(dest=dest)
                )
            with atomic_path(dest / target) as out:
                shutil.copyfile(work / "root" / member, out)
    _record(dest, name, version=f"{package} {version}")


def fetch(dest: str | os.PathLike, benchmarks: Sequence[str] = tuple(BENCHMARK_SOURCES), *,
          apt_get: str = "apt-get", python: str = sys.executable,
          log: Callable[[str], None] = print) -> list[str]:
    """Fetch the sources of `benchmarks` that are missing from `dest`; return the fetched names.

    Raises `SourceUnavailable` when a missing source cannot be obtained here.
    """
    root = Path(dest).resolve()
    missing = []
    for name in sources_for(benchmarks):
        if is_present(root, name):
            log(f"[corpora] {name}: present in {root}")
        else:
            missing.append(name)
    if not missing:
        return []
    root.mkdir(parents=True, exist_ok=True)
    fetched = []
    with tempfile.TemporaryDirectory(dir=root, prefix=".apt-") as apt_root:
        apt = PrivateApt(Path(apt_root), root, apt_get=apt_get)
        for name in missing:
            log(f"[corpora] {name}: fetching ({SOURCES[name].origin})")
            start = time.monotonic()
            if name == "wikipedia":
                fetch_wikipedia(root, python=python)
            elif name == "debian-descriptions":
                fetch_debian_descriptions(apt)
            else:
                fetch_package(apt, name)
            log(f"[corpora] {name}: done in {time.monotonic() - start:.1f} s")
            fetched.append(name)
    return fetched


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m lensllm.data.corpora fetch --dest DIR [--only wiki,debsum]``."""
    parser = argparse.ArgumentParser(prog="python -m lensllm.data.corpora", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = sub.add_parser("fetch", help="download the raw sources that are missing")
    fetch_cmd.add_argument("--dest", required=True, type=Path, help="cache directory")
    fetch_cmd.add_argument("--only", default=",".join(BENCHMARK_SOURCES),
                           help="comma-separated benchmarks (default: all)")
    args = parser.parse_args(argv)
    benchmarks = [b.strip() for b in args.only.split(",") if b.strip()]
    start = time.monotonic()
    try:
        fetch(args.dest, benchmarks)
    except (SourceUnavailable, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"[corpora] all sources of {','.join(benchmarks)} present in {args.dest} "
          f"({time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
