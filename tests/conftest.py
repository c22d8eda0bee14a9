"""Shared fixtures: the repository, the shared published curves, and a Snakemake runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def published_dir() -> Path:
    """The shared copy of the published curves (flan.csv, gigaword.csv); required in CI."""
    path = SHARED / "published"
    if not (path / "flan.csv").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI needs ../shared beside the repository")
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def reference_table1() -> Path:
    """Table 1 of Lin et al. (2024) for FLAN and Gigaword, as published."""
    path = SHARED / "reference" / "rsl-table1.tsv"
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI needs ../shared beside the repository")
        pytest.skip(f"{path} is missing")
    return path


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
