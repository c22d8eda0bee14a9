"""Paper mode on the shared published curves: `make paper`'s run, once per session (paper_results,
tests/workflow/conftest.py), and the real Snakemake command line."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from tests.helpers import PAPER, REPO, paper_run, run_snakemake


def test_paper_mode_writes_every_table_and_figure(paper_results):
    out = paper_results / "results" / "paper"
    for name in ["selection.tsv", "selection.md", "selection.tex", "fits.tsv", "prediction_error.tsv"]:
        assert (out / name).stat().st_size > 0, name
    for name in ["fits_flan.png", "fits_gigaword.png", "pearcorr_vs_budget.png", "pearcorr_vs_flops.png", "relacc_vs_flops.png"]:
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG", name
    selection = pd.read_csv(out / "selection.tsv", sep="\t")
    assert list(selection.columns) == ["benchmark", "method", "ratio", "metric", "value", "value_raw", "flops", "cost_reduction",
                                       "energy_joules"]
    assert selection["energy_joules"].isna().all()  # published curves come without energy
    assert set(selection["ratio"]) == {8, 16, 32, 64, 128, 256, 512}
    assert set(selection["method"]) == {"AtS", "ZeroShot", "SubTuning", "ModelSize", "RectifiedFit", "VanillaFit", "LensLLM",
                                        "Adaptive", "Race"}
    assert len(selection) == 2 * 9 * 7 * 2
    # Adaptive and Race are charged no more than AtS in any cell (AtS's least compute bounds them)
    flops = selection[selection["metric"] == "PearCorr"].pivot_table(index=["benchmark", "ratio"], columns="method", values="flops")
    assert (flops["Adaptive"] <= flops["AtS"]).all() and (flops["Race"] <= flops["AtS"]).all()
    fits = pd.read_csv(out / "fits.tsv", sep="\t")
    assert len(fits) == 2 * 30 * 3 and (fits.loc[fits["law"] == "rectified", "status"] != "failed").all()
    rectified = fits[fits["law"] == "rectified"].groupby("benchmark")["rms_log"].mean()
    assert rectified["flan"] <= 0.0065 and rectified["gigaword"] <= 0.0052


def test_difficulty_md_finds_the_papers_misleading_zero_shot_ranking(paper_results):
    """On the published curves the zero-shot ranking misleads (ZeroShot PearCorr -10.7 on FLAN and
    -49.2 on Gigaword, Lin et al.'s Table 1); difficulty.md reads the same from the loss tables."""
    text = (paper_results / "results" / "paper" / "difficulty.md").read_text()
    assert "| flan | facebook/opt-2.7b (not the best) |" in text and "| facebook/opt-1.3b (1638400) | -10.7 |" in text
    assert "| gigaword | facebook/opt-6.7b (not the best) |" in text and "| google/t5-v1_1-base (1638400) | -49.2 |" in text


def test_race_md_reports_every_cell_against_ats(paper_results):
    """race.md / race.tsv: per cell RelAcc, regret, FLOPs / AtS's (<= 1), rounds, P(best), the true best
    still in the race; with the config's settings the pick's mean RelAcc stays >= 96 and every cell >= 91."""
    out = paper_results / "results" / "paper"
    race = pd.read_csv(out / "race.tsv", sep="\t")
    assert len(race) == 14 and set(race["benchmark"]) == {"flan", "gigaword"}
    assert (race["flops_ratio"] <= 1).all() and (race["rounds"] >= 1).all()
    assert ((race["relacc"] == 100) == (race["regret_nats"] == 0)).all()
    assert race["relacc"].mean() >= 96 and race["relacc"].min() >= 91
    md = (out / "race.md").read_text()
    assert "| flan | 1/8 | 204,800 |" in md and "P(best) calibration" in md


def test_workflow_reproduces_the_published_table(paper_results, reference_table1):
    selection = pd.read_csv(paper_results / "results" / "paper" / "selection.tsv", sep="\t")
    merged = pd.read_csv(reference_table1, sep="\t").merge(selection, on=["benchmark", "method", "ratio", "metric"], suffixes=("_published", ""))
    assert len(merged) == 112
    assert (merged["value_raw"] - merged["value_published"]).abs().max() <= 0.06


def test_a_finished_run_has_nothing_left_to_do(paper_results, published_dir):
    """paper_results is `make paper`'s run: Snakemake itself with the tests' options finding nothing
    to do there also shows that the Makefile passes the same configuration (the same tables)."""
    result = paper_run(paper_results, published_dir, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_the_html_report_shows_the_figures_with_captions(paper_results):
    html = (paper_results / "results" / "paper" / "report.html").read_text()  # written by `make paper`
    assert "fits_flan.png" in html and "relacc_vs_flops.png" in html
    assert "AtS phase transition" in html


def test_a_broken_curves_file_stops_the_run_naming_file_row_and_column(published_dir, tmp_path):
    curves = tmp_path / "curves"
    shutil.copytree(published_dir, curves)
    text = (curves / "gigaword.csv").read_text().splitlines()
    cells = text[5].split(",")
    cells[4] = "oops"
    text[5] = ",".join(cells)
    (curves / "gigaword.csv").write_text("\n".join(text) + "\n")
    result = paper_run(tmp_path, curves, check=False)
    assert result.returncode != 0
    assert f"{curves / 'gigaword.csv'}: row 6" in result.stderr and "column '800'" in result.stderr
    assert not (tmp_path / "results" / "paper" / "losses" / "gigaword.tsv").exists()


def test_a_wrong_sha256_stops_the_download(published_dir, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "flan.csv").write_text((published_dir / "flan.csv").read_text() + "\n")
    result = run_snakemake(
        tmp_path, "--cores", "1", "--configfile", PAPER, "--config", f"curves_url={mirror.as_uri()}/", 'benchmarks=["flan"]', check=False
    )
    assert result.returncode != 0
    assert "flan.csv: sha256" in result.stderr and "does not match the pinned" in result.stderr


@pytest.mark.parametrize(
    "override, expected",
    [("ratio=[8]", "'ratio' was unexpected"), ("target=lots", "'lots' is not of type 'integer'"), ("methods=[Oracle]", "'Oracle' is not one of"),
     ("methods=[AtS,LensLLM-NTK-fixed]", "key 'methods': ['LensLLM-NTK-fixed'] need the models' weights")],
)
def test_bad_config_fails_at_start_naming_the_key(tmp_path, override, expected):
    result = run_snakemake(tmp_path, "-n", "--configfile", PAPER, "--config", override, check=False)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


def test_paper_mode_writes_the_papers_tables_and_figures(paper_results, reference_table1):
    from lensllm.report.paper import page_table, docs_table

    out = paper_results / "results" / "paper" / "paper"
    for name in ["table1", "table2", "table3"]:
        for ext in ["tsv", "md", "tex"]:
            assert (out / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"
    figures = ["difficulty", "rmsd_scatter", "zero_shot_lines", "pearcorr_vs_flops", "ablation_hyper", "ablation_size", "curves_flan", "curves_gigaword"]
    for name in figures:
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
        assert (out / f"{name}.pdf").read_bytes()[:4] == b"%PDF", name
    reference = reference_table1.parent
    released = pd.read_csv(reference / "rsl-table2-laws.csv").assign(benchmark=lambda f: f["dataset"].str.lower())
    table2 = pd.read_csv(out / "table2.tsv", sep="\t")
    merged = released[released["method"] == "AtS"].merge(table2, on=["benchmark", "method", "ratio", "metric"], suffixes=("_released", ""))
    assert len(merged) == 28 and (merged["value"] - merged["value_released"]).abs().max() <= 1e-4
    for name, n in [("ablation_hyper", 210), ("ablation_size", 448)]:
        assert len(pd.read_csv(out / f"{name}.tsv", sep="\t")) == n
    # the paper-mode table of docs/paper-mode.md is generated from this run (python -m lensllm.report.paper docs)
    selection = pd.read_csv(paper_results / "results" / "paper" / "selection.tsv", sep="\t")
    assert page_table((REPO / "docs" / "paper-mode.md").read_text()) == docs_table(selection)
