"""Run the workflow so that a rerun resumes a killed run: `python -m lensllm.pipeline.launch SNAKEMAKE-ARGS`.

The Makefile's targets call Snakemake through this launcher. A run killed hard (`kill -9`, a crash,
a lost terminal) leaves Snakemake's lock in `<workdir>/.snakemake/locks`, and the next run would
refuse to start. Before starting Snakemake, the launcher looks for a live Snakemake process whose
working directory is the run's (Linux `/proc`): if there is none, the lock is stale and is removed
(what `snakemake --unlock` does), with one line saying so; if there is one, it says which and
stops. Jobs left incomplete are then redone by Snakemake's `--rerun-incomplete`, which the Makefile
passes; finished jobs are kept. Elsewhere than Linux the lock is left alone and a stale one gets a
one-line hint.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence


def workdir_of(args: Sequence[str]) -> Path:
    """The working directory Snakemake will use: `--directory`/`-d` if given, else this one."""
    for i, arg in enumerate(args):
        if arg in ("--directory", "-d") and i + 1 < len(args):
            return Path(args[i + 1]).resolve()
        if arg.startswith("--directory="):
            return Path(arg.split("=", 1)[1]).resolve()
    return Path.cwd().resolve()


def snakemake_pids_in(workdir: Path, proc: Path = Path("/proc")) -> list[int] | None:
    """Live Snakemake processes (other than this one) working in `workdir`; None without /proc."""
    if not proc.is_dir():
        return None
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # gone, or not ours to read
            continue
        if any(part.endswith(b"snakemake") for part in command) and cwd == workdir:
            pids.append(int(entry.name))
    return sorted(pids)


def clear_stale_lock(workdir: Path) -> bool:
    """Remove the lock of a killed run in `workdir`; False when a live run holds it (or /proc is
    missing and it may be live), after one line saying what to do."""
    locks = sorted((workdir / ".snakemake" / "locks").glob("*.lock"))
    if not locks:
        return True
    live = snakemake_pids_in(workdir)
    if live is None:
        print(f"lensllm: {workdir} is locked; if no Snakemake runs there, a killed run left the lock: "
              "rerun with ARGS=--unlock, then again", file=sys.stderr)
        return True  # Snakemake itself refuses to start and explains
    if live:
        print(f"lensllm: Snakemake (pid {', '.join(map(str, live))}) is already running in {workdir}; "
              "wait for it or stop it", file=sys.stderr)
        return False
    for lock in locks:
        lock.unlink(missing_ok=True)
    print(f"lensllm: removed the lock a killed run left in {workdir}/.snakemake/locks; resuming",
          file=sys.stderr)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not clear_stale_lock(workdir_of(args)):
        return 1
    return subprocess.call([sys.executable, "-m", "snakemake", *args])


if __name__ == "__main__":
    sys.exit(main())
