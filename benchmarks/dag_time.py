"""Benchmark the DAG of the papers' grid: how long `snakemake -n --configfile config/hub.yaml` takes.

    python benchmarks/dag_time.py [--repeats 5] [--profile config/profiles/slurm]

Runs the dry-run of config/hub.yaml (30 hub models x 3 benchmarks x 15 sizes, one fine-tuning job
per size) `--repeats` times in a fresh working directory, offline (HF_HUB_OFFLINE=1: building the
DAG loads no model and no dataset), and reports the wall time of each run, their median, and the
jobs per rule of the DAG. With `--profile`, the dry-run goes through that profile as well (its
group jobs are formed then). Results go to stdout and to results/benchmarks/dag_time.tsv.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dry_run(workdir: Path, profile: str | None) -> tuple[float, str]:
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "-n", "--configfile", str(REPO / "config" / "hub.yaml"), "--quiet", "rules"]
    if profile:
        command += ["--workflow-profile", str(REPO / profile)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"snakemake -n failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds, result.stdout + result.stderr


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", help="a profile directory, e.g. config/profiles/slurm")
    args = parser.parse_args()
    times, output = [], ""
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            seconds, output = dry_run(Path(tmp), args.profile)
            times.append(seconds)
            print(f"run {i + 1}: {seconds:.2f} s", flush=True)
    counts = job_counts(output)
    print(f"snakemake -n --configfile config/hub.yaml{' --workflow-profile ' + args.profile if args.profile else ''}:"
          f" median {statistics.median(times):.2f} s over {args.repeats} runs"
          f" (min {min(times):.2f}, max {max(times):.2f}), {counts['total']} jobs")
    for rule, n in counts.items():
        if rule != "total":
            print(f"  {rule:24s} {n:6d}")
    out = REPO / "results" / "benchmarks" / "dag_time.tsv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        f.write("profile\trepeats\tmedian_s\tmin_s\tmax_s\tjobs\n")
        f.write(f"{args.profile or ''}\t{args.repeats}\t{statistics.median(times):.3f}\t{min(times):.3f}"
                f"\t{max(times):.3f}\t{counts['total']}\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
