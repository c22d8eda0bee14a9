"""Wall time of each stage (rule) of a Snakemake run, read from its log.

    python benchmarks/stage_times.py [--log .snakemake/log/<date>.snakemake.log] [--directory .]
        [--out results/benchmarks/stage_times.tsv]

A stage is all the jobs of one rule: its wall time runs from the start of its first job to the
finish of its last job (stages overlap when jobs run in parallel). For each rule the table gives
the number of jobs, the first start, the last finish, that wall time and the sum of the job
durations (sum / wall > 1 means jobs of the rule ran side by side); a last row `TOTAL` gives the
run: first job start to last job finish, all jobs, and the sum of all job durations. Rules are in
the order of their first start. `failed` counts jobs that ended with an error, `unfinished` jobs
with a start but no end in the log (a run still going, or killed): they are left out of the
sums, and the stage then ends at its last recorded finish. The run's own "Elapsed time" (which
includes building the DAG) is printed below the table when the log has it.

Log format read (Snakemake 8/9, without --quiet, which leaves the job blocks out): a job starts
with a ``[Sat Nov 28 15:39:02 2026]`` line followed by ``rule NAME:`` or ``localrule NAME:``
(``checkpoint`` / ``localcheckpoint`` alike) and, a few lines below, ``jobid: N``; it finishes
with a timestamp line followed by ``Finished jobid: N (Rule: NAME)`` (``Finished job N.`` in
older versions), or fails with ``Error in rule NAME:`` and its ``jobid: N``. Timestamps have a
resolution of one second, so durations are exact to about a second.

Default log: the newest (by the start time in its name) ``.snakemake/log/*.snakemake.log`` of
--directory (default: the working directory) that records jobs; newer logs without jobs (--quiet runs, lint, report, dry runs) are
skipped with a note. Stdlib only.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

TIMESTAMP = re.compile(r"^\[(\w{3} \w{3} +\d{1,2} \d{2}:\d{2}:\d{2} \d{4})\]$")
JOB_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
JOB_ERROR = re.compile(r"^Error in rule (\S+):$")
JOB_ID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished job(?:id:)? (\d+)(?:\.|\s+\(Rule: (\S+)\))")
ELAPSED = re.compile(r"^Elapsed time: (.+)$")
COLUMNS = ["stage", "jobs", "failed", "unfinished", "first_start", "last_finish", "wall_seconds", "job_seconds_sum"]


@dataclass
class Job:
    rule: str
    start: datetime
    end: datetime | None = None
    failed: bool = False


@dataclass
class Run:
    jobs: list[Job] = field(default_factory=list)
    elapsed: str | None = None


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")


def parse_log(path: Path) -> Run:
    """The jobs of a Snakemake log, with their start and end times (see the module docstring)."""
    run = Run()
    running: dict[int, Job] = {}
    stamp: datetime | None = None
    pending: tuple[str, str] | None = None  # ("start" | "error", rule) until its jobid line
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.rstrip()
        if match := TIMESTAMP.match(line):
            stamp = parse_timestamp(match.group(1))
            continue
        if stamp is not None and (match := JOB_START.match(line)):
            pending = ("start", match.group(1))
            continue
        if stamp is not None and (match := JOB_ERROR.match(line)):
            pending = ("error", match.group(1))
            continue
        if pending and (match := JOB_ID.match(line)):
            kind, rule = pending
            pending = None
            jobid = int(match.group(1))
            if kind == "start":
                job = Job(rule, stamp)
                running[jobid] = job  # a retried job restarts under the same id
                run.jobs.append(job)
            elif jobid in running:
                job = running.pop(jobid)
                job.end, job.failed = stamp, True
            continue
        if stamp is not None and (match := FINISHED.match(line)):
            pending = None
            job = running.pop(int(match.group(1)), None)
            if job is not None:
                job.end = stamp
            continue
        if match := ELAPSED.match(line):
            run.elapsed = match.group(1)
        elif line and not line.startswith(" "):
            pending = None  # a rule block ended without a jobid line (e.g. a dry-run summary)
    return run


def stage_rows(run: Run) -> list[dict[str, object]]:
    """One row per rule in order of first start, then the TOTAL row."""
    by_rule: dict[str, list[Job]] = {}
    for job in sorted(run.jobs, key=lambda job: job.start):
        by_rule.setdefault(job.rule, []).append(job)
    groups = [*by_rule.items(), ("TOTAL", run.jobs)]
    rows = []
    for name, jobs in groups:
        ended = [job for job in jobs if job.end is not None]
        first = min(job.start for job in jobs)
        last = max((job.end for job in ended), default=None)
        rows.append({
            "stage": name,
            "jobs": len(jobs),
            "failed": sum(job.failed for job in jobs),
            "unfinished": len(jobs) - len(ended),
            "first_start": first.isoformat(sep=" "),
            "last_finish": last.isoformat(sep=" ") if last else "",
            "wall_seconds": f"{(last - first).total_seconds():.0f}" if last else "",
            "job_seconds_sum": f"{sum((job.end - job.start).total_seconds() for job in ended):.0f}",
        })
    return rows


def newest_log(directory: Path) -> Path:
    """The newest log of `directory`/.snakemake/log that records jobs; notes the newer ones skipped."""
    # named after the start of the run (2026-11-28T153901.226117.snakemake.log): newest first
    logs = sorted((directory / ".snakemake" / "log").glob("*.snakemake.log"), key=lambda path: path.name, reverse=True)
    if not logs:
        raise SystemExit(f"error: no Snakemake log in {directory / '.snakemake' / 'log'}; give one with --log")
    for skipped, path in enumerate(logs):
        if parse_log(path).jobs:
            if skipped:
                print(f"note: skipped {skipped} newer log(s) without job records (--quiet, lint, report or dry run): "
                      + ", ".join(p.name for p in logs[:skipped]), file=sys.stderr)
            return path
    raise SystemExit(f"error: none of the {len(logs)} logs in {directory / '.snakemake' / 'log'} records jobs "
                     "(runs with --quiet leave them out)")


def format_tsv(rows: list[dict[str, object]]) -> str:
    lines = ["\t".join(COLUMNS)]
    lines += ["\t".join(str(row[column]) for column in COLUMNS) for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, help="Snakemake log (default: the newest with jobs, see --directory)")
    parser.add_argument("--directory", type=Path, default=Path("."),
                        help="working directory of the run whose .snakemake/log is searched (default: .)")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/stage_times.tsv"))
    args = parser.parse_args(argv)

    if args.log is not None and not args.log.is_file():
        parser.error(f"--log {args.log}: no such file")
    path = args.log if args.log is not None else newest_log(args.directory)
    run = parse_log(path)
    if not run.jobs:
        parser.error(f"--log {path}: no job records (was it run with --quiet, or is it a lint/report log?)")
    table = format_tsv(stage_rows(run))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(f"# {path}")
    print(table, end="")
    if run.elapsed:
        print(f"# Snakemake's elapsed time (with DAG building): {run.elapsed}")
    unfinished = sum(job.end is None for job in run.jobs)
    if unfinished:
        print(f"# {unfinished} job(s) without an end in the log: the run is still going or was stopped", file=sys.stderr)
    print(f"-> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
