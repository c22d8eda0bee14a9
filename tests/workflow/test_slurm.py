"""The quick grid on a real SLURM cluster through config/profiles/slurm: real daemons started by
tests/slurm/start_cluster.sh (and stopped by stop_cluster.sh, also when the test fails), real sbatch
submissions of one benchmark's fine-tunes and NTK terms and of the whole analysis, one fine-tuning
attempt killed like an out-of-memory job and resubmitted with more memory, and results identical to
the local run of the same config."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import QUICK, REPO, copy_redoing_one_benchmark, snakemake_command, write_python_killed_once

SLURM = REPO / "tests" / "slurm"
PROFILE = REPO / "config" / "profiles" / "slurm"
MARKER = "# Written by lensllm tests/slurm/start_cluster.sh"
MODELS = ["gpt2-xs", "llama-xs", "t5-xs"]
BENCHMARKS = ["wiki", "debsum", "instruct"]
# The fine-tune whose first attempt is killed (SIGKILL, as the out-of-memory killer does).
KILLED = ("debsum", "llama-xs")
SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def megabytes(field: str) -> int:
    """`MinMemoryNode=3005M` (or `=3G`) from `scontrol show job`, in MB."""
    value = re.fullmatch(r"MinMemoryNode=(\d+)([MGT])", field)
    assert value, field
    return int(value.group(1)) * {"M": 1, "G": 1024, "T": 1024**2}[value.group(2)]


def why_no_slurm() -> str | None:
    """Why this machine cannot run the test cluster, or None."""
    if os.geteuid() != 0:
        return "the SLURM test needs root (it installs slurm and munge with apt-get and starts their daemons)"
    if not Path("/etc/debian_version").is_file() or shutil.which("apt-get") is None:
        return "the SLURM test needs Debian (it installs slurm and munge with apt-get)"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.is_file() and MARKER not in conf.read_text().splitlines():
        return "this machine has a SLURM configuration of its own; the test does not replace it"
    return None


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A one-node SLURM cluster on this machine for the module; its state directory (PIDs, logs)."""
    reason = why_no_slurm()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm-state")
    try:
        start = subprocess.run([str(SLURM / "start_cluster.sh"), str(state)], capture_output=True, text=True, timeout=900)
        if start.returncode == 2 and not os.environ.get("CI"):  # this machine cannot (another cluster runs)
            pytest.skip(start.stderr.strip())
        assert start.returncode == 0, f"start_cluster.sh failed ({start.returncode}):\n{start.stdout}\n{start.stderr}"
        yield state
    finally:
        stop = subprocess.run([str(SLURM / "stop_cluster.sh"), str(state)], capture_output=True, text=True, timeout=300)
        assert stop.returncode == 0, f"stop_cluster.sh failed:\n{stop.stdout}\n{stop.stderr}"
        for daemon in ("slurmd", "slurmctld", "munged"):
            assert not (state / f"{daemon}.pid").exists(), f"{daemon} was not stopped"


def test_quick_grid_on_slurm_equals_local_run(quick_local_results, slurm_cluster, tmp_path, sources_dir):
    # The quick run's benchmarks, zoo and the jobs of the two other benchmarks are kept; the
    # killed fine-tune's benchmark (its fine-tunes and NTK terms) and the whole analysis are redone,
    # as SLURM jobs, and must give the local run's tables.
    benchmark, model = KILLED
    results = copy_redoing_one_benchmark(quick_local_results, tmp_path, benchmark)
    record = tmp_path / "finetune-calls.txt"
    write_python_killed_once(tmp_path / "bin", f"*'--model-name {model} '*'/{benchmark}.jsonl '*", record)
    command, env = snakemake_command(
        tmp_path,
        "--workflow-profile", str(PROFILE),
        "--configfile", QUICK,
        "--config", f"sources_dir={sources_dir}",
        # The test node has 2 CPUs (the profile allows 4 a job), and the plugin's first status
        # check comes after 1 s instead of 20 s.
        "--cores", "2",
        "--slurm-init-seconds-before-status-checks", "1",
    )
    env["PATH"] = f"{tmp_path / 'bin'}:{env['PATH']}"  # reaches the jobs: sbatch --export=ALL
    try:
        run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1200)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"the SLURM run did not finish within 20 minutes:\n{str(err.stdout)[-3000:]}")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]

    # Every job but `all` went through sbatch; SLURM ran each and saw it end with exit status 0,
    # except the first attempt of the killed fine-tune.
    assert set(re.findall(r"^localrule (\w+):", output, flags=re.M)) == {"all"}
    submitted = {int(jobid): log for _, jobid, log in SUBMITTED.findall(output)}
    finetunes = {jobid: log for jobid, log in submitted.items() if "/rule_finetune_model/" in log}
    assert sorted(Path(log).parent.name for log in finetunes.values()) == sorted(
        [f"{benchmark}_{m}" for m in MODELS] + [f"{benchmark}_{model}"]
    )
    assert any("/group_analysis_" in log for log in submitted.values()), "the analysis was not one group job"
    controller = (slurm_cluster / "slurmctld.log").read_text()
    ended = {int(j): int(s) for j, s in re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS (\d+)", controller)}
    assert set(submitted) <= set(ended), f"jobs SLURM never saw end: {set(submitted) - set(ended)}"
    failed = [jobid for jobid in submitted if ended[jobid] != 0]
    assert len(failed) == 1 and f"/{benchmark}_{model}/" in submitted[failed[0]]

    # Each fine-tune ran inside its SLURM job, with the memory its rule asked for; the killed one
    # was resubmitted as a new job with twice the memory.
    calls = [line.split(" ", 2) for line in record.read_text().splitlines()]
    assert len(calls) == len(MODELS) + 1
    assert {int(jobid) for jobid, _, _ in calls} == set(finetunes)
    killed = [(int(j), megabytes(mem)) for j, mem, args in calls if f"--model-name {model} " in args and f"/{benchmark}.jsonl " in args]
    assert len(killed) == 2 and killed[0][0] == failed[0] and killed[1][0] != failed[0]
    assert killed[1][1] in (2 * killed[0][1], 2 * killed[0][1] + 1)

    # The same numbers as the local run.
    local = quick_local_results / "results" / "quick"
    for name in [*(f"losses/{b}.tsv" for b in BENCHMARKS), "fits.tsv", "selection.tsv", "prediction_error.tsv", "calibration.tsv", "bound.tsv"]:
        assert (results / name).read_bytes() == (local / name).read_bytes(), f"{name} differs from the local run"
