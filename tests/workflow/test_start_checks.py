"""Checks at start, before any job: a `python` on PATH that cannot run the jobs (the check itself
and the other start checks are unit-tested in tests/unit/test_pipeline.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import QUICK, REPO


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
