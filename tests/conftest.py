"""Fixtures of every test (the shared published curves and reference tables) and the markers the
suite sets by itself: `workflow` on every test under tests/workflow/, `shared` on every test that
reads ../shared (through the fixtures below). The helpers are in tests/helpers.py, the workflow's
fixtures (the quick grid and paper mode, each run once per session) in tests/workflow/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import SHARED

WORKFLOW = Path(__file__).resolve().parent / "workflow"
# The fixtures that read ../shared: a test using one, directly or through another fixture, needs it.
SHARED_FIXTURES = {"published_dir", "reference_table1"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if WORKFLOW in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.workflow)
        if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.shared)


def _shared_file(path: Path) -> Path:
    """`path` under ../shared; a test needing it fails in CI without it and is skipped elsewhere."""
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI needs ../shared beside the repository")
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def published_dir() -> Path:
    """The shared copy of the published curves (flan.csv, gigaword.csv); required in CI."""
    path = SHARED / "published"
    _shared_file(path / "flan.csv")
    return path


@pytest.fixture(scope="session")
def reference_table1() -> Path:
    """Table 1 of Lin et al. (2024) for FLAN and Gigaword, as published."""
    return _shared_file(SHARED / "reference" / "rsl-table1.tsv")
