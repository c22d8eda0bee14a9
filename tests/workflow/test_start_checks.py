"""Checks at start, before any job: an unknown benchmark, and a `python` that cannot run the jobs."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import QUICK, REPO, run_snakemake


def test_an_unknown_benchmark_stops_the_run_at_start_naming_the_key_and_the_known_ones(tmp_path):
    result = run_snakemake(tmp_path, "-n", "--configfile", QUICK, "--config", 'benchmarks=["nosuch"]', check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "key 'benchmarks': unknown benchmark(s) ['nosuch']; known: ['wiki', 'debsum', 'instruct']" in output
    assert "rule " not in output  # nothing was planned


def test_snakemake_outside_the_environment_stops_at_start_with_the_fix(tmp_path):
    # As `.venv/bin/snakemake` without activating: the shell jobs' `python` is not the environment's.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to("/bin/false")  # a python that cannot import lensllm
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "-n", "--configfile", QUICK]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert f"the python on PATH ({bin_dir / 'python'}) cannot import lensllm: activate the environment first (. .venv/bin/activate)" in result.stdout + result.stderr
