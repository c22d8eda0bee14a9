"""Every Makefile target the README and docs/development.md name, run through `make` as a user types
it (the long ones as dry runs), so that a quoting or argument bug in the Makefile fails here.
`make test` is CI itself."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.helpers import REPO, run_make


def test_make_paper_with_the_shared_curves_writes_the_tables_and_the_report(paper_results):
    """paper_results is `make paper CURVES_DIR=<the shared curves>` (tests/workflow/conftest.py), the
    run every paper test checks; test_paper_mode's test_a_finished_run_has_nothing_left_to_do shows
    that Snakemake with the tests' own options would make the same tables (nothing left to do)."""
    out = paper_results / "results" / "paper"
    selection = pd.read_csv(out / "selection.tsv", sep="\t")
    assert set(selection["benchmark"]) == {"flan", "gigaword"}
    assert (out / "report.html").stat().st_size > 0
    # The coverage select mode prints beside its intervals is what paper mode measures now: the
    # same models covered, and log scores equal up to float noise (the fits' last digits may move
    # between CPUs; a covered model that flips moves a coverage by at least 1/210).
    measured = pd.read_csv(out / "coverage.tsv", sep="\t")
    shipped = pd.read_csv(REPO / "config" / "published_coverage.tsv", sep="\t")
    assert measured[["benchmark", "method", "level", "budgets"]].equals(shipped[["benchmark", "method", "level", "budgets"]])
    for column in ["coverage", "worst"]:
        assert measured[column].to_numpy() == pytest.approx(shipped[column].to_numpy(), abs=1e-9), column
    assert measured["mean_log_score"].to_numpy() == pytest.approx(shipped["mean_log_score"].to_numpy(), abs=1e-6)


def test_make_paper_without_shared_curves_plans_the_download_of_every_benchmark(tmp_path):
    result = run_make("paper", CURVES_DIR="", ARGS=f"--directory {tmp_path} --dry-run")
    planned = result.stdout.count("rule fetch_published_curves:")
    assert planned == 3, result.stdout[-2000:]  # flan, gigaword, wmt19 from the pinned URL


@pytest.mark.parametrize("target, run_name", [("run", "default"), ("quick", "quick"), ("select", "select")])
def test_make_grid_targets_plan_their_run(tmp_path, target, run_name):
    result = run_make(target, ARGS=f"--directory {tmp_path} --dry-run")
    assert "rule finetune_model:" in result.stdout
    assert f"results/{run_name}/" in result.stdout


def test_make_lint_checks_every_mode():
    """The suite's only lint run: Snakemake's linter in each mode (paper mode included), a dry run
    of the hub-scale grid, and snakefmt's check of the rule files; make stops at the first failure."""
    result = run_make("lint")
    output = result.stdout + result.stderr  # Snakemake logs to stderr, make echoes to stdout
    assert output.count("Congratulations, your workflow is in a good condition!") == 4
    for mode in ("quick", "select", "paper"):
        assert f"--lint --configfile config/{mode}.yaml" in result.stdout, mode
    assert "--dry-run --quiet all --configfile config/hub.yaml" in output
    assert "snakefmt --check Snakefile rules" in result.stdout  # and it passed: make went on to the end


def test_make_bench_runs_to_the_end_on_the_quick_grid(quick_local_results, sources_dir, published_dir):
    result = run_make(
        "bench",
        CURVES_DIR=str(published_dir),
        BENCH_RUN="quick",
        BENCH_DIR=str(quick_local_results),
        ARGS=f"--directory {quick_local_results} --config sources_dir={sources_dir}",
        THROUGHPUT_ARGS="--models gpt2-xs --size 32 --out " + str(quick_local_results / "throughput.tsv"),
    )
    assert "batched LM speed-up over scipy" in result.stdout
    throughput = pd.read_csv(quick_local_results / "throughput.tsv", sep="\t")
    assert list(throughput["model"]) == ["gpt2-xs"]
    assert "TOTAL" in result.stdout  # the stage-time table of the quick run
