"""What the tests share besides fixtures: the repository's paths, and runners of the real Snakemake
and make command lines. Imported as `from tests.helpers import ...` (the fixtures stay in the
conftest files: tests/conftest.py for every test, tests/workflow/conftest.py for the workflow's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
QUICK = str(REPO / "config" / "quick.yaml")
PAPER = str(REPO / "config" / "paper.yaml")


def snakemake_command(workdir: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """The Snakemake command line on the repository's Snakefile inside `workdir`, and its
    environment: this interpreter's directory first on PATH (shell rules run `python -m lensllm`),
    and the hubs offline."""
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return command, {**os.environ, "PATH": path, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def run_snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real Snakemake command line on the repository's Snakefile inside `workdir`."""
    command, env = snakemake_command(workdir, *args)
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def quick_run(workdir, sources_dir, *extra, check=True):
    """The quick config (config/quick.yaml) in `workdir`, the raw text sources read from `sources_dir`."""
    return run_snakemake(workdir, "--cores", "2", "--configfile", QUICK, "--config", f"sources_dir={sources_dir}", *extra, check=check)


def copy_redoing_one_benchmark(quick_results: Path, workdir: Path, benchmark: str) -> Path:
    """Copy a finished quick run into `workdir` without `benchmark`'s fine-tunes and NTK terms and
    without the analysis (the other benchmarks' jobs, the data and the zoo are kept), so that a run
    there redoes exactly those; returns the copy's results directory."""
    subprocess.run(["cp", "-a", f"{quick_results}/.", str(workdir)], check=True)
    results = workdir / "results" / "quick"
    kept = ("data", "zoo", "models", "weights", "finetune", "ntk", "logs", "benchmarks")
    removed = [p for p in results.iterdir() if p.name not in kept] + [results / "finetune" / benchmark, results / "ntk" / benchmark]
    subprocess.run(["rm", "-r", *map(str, removed)], check=True)
    return results


def paper_run(workdir, published_dir, *extra, check=True):
    """Paper mode on the shared published curves of FLAN and Gigaword, through Snakemake itself
    (`make paper` passes the same configuration: tests/workflow/conftest.py's paper_results)."""
    return run_snakemake(workdir, "--cores", "2", "--configfile", PAPER, "--config", f"curves_dir={published_dir}",
                         'benchmarks=["flan","gigaword"]', *extra, check=check)


def write_python_killed_once(bin_dir: Path, pattern: str, record: Path) -> Path:
    """A stand-in for `python`, first on PATH for a run: each `python -m lensllm.training.finetune` call
    appends `<SLURM job id> <its memory, MinMemoryNode=...> <arguments>` to `record` (`none none`
    outside SLURM), and the first call whose arguments match the shell `pattern` is killed with
    SIGKILL (exit status 137), as the kernel's out-of-memory killer kills a job; every other call
    runs this interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    lock = bin_dir / "killed-once"
    wrapper = bin_dir / "python"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2" = "-m lensllm.training.finetune" ]; then\n'
        "    memory=none\n"
        '    [ -z "$SLURM_JOB_ID" ] || memory=$(scontrol show job -o "$SLURM_JOB_ID" | grep -o "MinMemoryNode=[^ ]*")\n'
        f'    echo "${{SLURM_JOB_ID:-none}} ${{memory:-none}} $*" >> {record}\n'
        f'    case "$*" in {pattern}) mkdir {lock} 2>/dev/null && kill -KILL $$ ;; esac\n'
        "fi\n"
        f'exec {sys.executable} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def make_command(target: str, **variables: str) -> tuple[list[str], dict[str, str]]:
    """`make -C <repo> TARGET VAR=value ...` with this interpreter's environment as the Makefile's
    VENV (so nothing is installed), and the hubs offline. Skips (fails in CI) when that environment
    was not installed by `make install`: make would install into it first."""
    venv = Path(sys.prefix)
    if not (venv / ".installed").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{venv} was not installed by `make install`")
        pytest.skip(f"{venv} was not installed by `make install`")
    command = ["make", "--no-print-directory", "-C", str(REPO), target, f"VENV={venv}",
               *(f"{k}={v}" for k, v in variables.items())]
    return command, {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def run_make(target: str, check: bool = True, **variables: str) -> subprocess.CompletedProcess:
    """Run a Makefile target as a user would; fail with its output when it fails and `check`."""
    command, env = make_command(target, **variables)
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"make {target} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result
