"""The workflow's session fixtures: the raw text sources, the quick grid and paper mode, each run
once per session and checked by every test that needs them."""

from __future__ import annotations

import pytest

from tests.helpers import REPO, quick_run, run_make


@pytest.fixture(scope="session")
def sources_dir():
    """One cache of the raw text sources for every grid test (fetched from PyPI/Debian once)."""
    path = REPO / "results" / "sources"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def quick_local_results(tmp_path_factory, sources_dir):
    """The quick config run once per session on this machine (local execution): the grid tests
    check it, and the SLURM test compares its own run with it."""
    workdir = tmp_path_factory.mktemp("quick")
    quick_run(workdir, sources_dir)
    return workdir


@pytest.fixture(scope="session")
def paper_results(tmp_path_factory, published_dir):
    """`make paper` on the shared curves (CURVES_DIR), run once per session as a user types it: the
    workflow and its HTML report. The paper tests check its tables, figures and report, test_make
    the target; that Snakemake itself with the tests' options (helpers.paper_run) finds nothing to
    do in it shows that both pass the same configuration. Skipped (failed in CI) where this
    environment was not installed by `make install`."""
    workdir = tmp_path_factory.mktemp("paper")
    run_make("paper", CURVES_DIR=str(published_dir), ARGS=f"--directory {workdir}")
    return workdir
