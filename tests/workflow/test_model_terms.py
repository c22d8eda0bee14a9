"""What the quick grid learns from the models themselves: NTK, weight spectra, Hessian trace."""

from __future__ import annotations

import json

import pandas as pd
import pytest

MODELS = ["gpt2-xs", "llama-xs", "t5-xs"]
BENCHMARKS = ["wiki", "debsum", "instruct"]
NTK_METHODS = ["LensLLM-NTK-fixed", "LensLLM-NTK-fitted"]


@pytest.fixture(scope="module")
def out(quick_local_results):
    return quick_local_results / "results" / "quick"


def test_every_model_gets_an_ntk_term_on_every_benchmark_and_its_weight_metrics(out):
    ntk = pd.read_csv(out / "ntk.tsv", sep="\t")
    assert sorted(zip(ntk["benchmark"], ntk["model"])) == sorted((b, m) for b in BENCHMARKS for m in MODELS)
    assert (ntk["n_probes"] == 32).all() and (ntk["params_used"] == ntk["params_total"]).all()
    # F(0) = ||f0(X) - Y||^2 summed over the probes: at least n_probes x (mean loss)^2 (Jensen).
    assert (ntk["lambda_max"] > 0).all() and (ntk["flops"] > 0).all()
    assert (ntk["F0"] >= ntk["n_probes"] * ntk["mean_loss"] ** 2 * (1 - 1e-9)).all()
    weights = pd.read_csv(out / "weight_metrics.tsv", sep="\t")
    assert sorted(weights["model"]) == sorted(MODELS)
    assert (weights["alpha"] > 1).all() and (weights["n_layers"] > 0).all()


def test_ntk_selectors_are_scored_beside_lensllm_with_the_ntk_cost_charged(out):
    selection = pd.read_csv(out / "selection.tsv", sep="\t")
    ntk = pd.read_csv(out / "ntk.tsv", sep="\t")
    spectra_cost = pd.read_csv(out / "weight_metrics.tsv", sep="\t")["flops"].sum()
    for benchmark in BENCHMARKS:
        rows = selection[(selection["benchmark"] == benchmark) & (selection["metric"] == "PearCorr")]
        charged = {(m, r): f for m, r, f in zip(rows["method"], rows["ratio"], rows["flops"])}
        cost = ntk.loc[ntk["benchmark"] == benchmark, "flops"].sum()
        for ratio in (2, 4, 8):
            for method in NTK_METHODS:
                assert charged[(method, ratio)] == pytest.approx(charged[("LensLLM", ratio)] + cost, rel=1e-9)
            assert charged[("NLPMetrics", ratio)] == pytest.approx(spectra_cost, rel=1e-9)
    errors = pd.read_csv(out / "prediction_error.tsv", sep="\t")
    assert {"AtS", "RectifiedFit", "LensLLM", *NTK_METHODS} <= set(errors["method"])
    table = (out / "prediction_error.md").read_text()
    assert "| Benchmark | Ratio | AtS | RectifiedFit | VanillaFit | LensLLM | LensLLM-NTK-fixed | LensLLM-NTK-fitted |" in table
    assert "LensLLM-NTK-fixed" in (out / "selection.md").read_text()


def test_every_finetune_records_the_hessian_trace_and_each_benchmark_gets_its_figure(out):
    for benchmark in BENCHMARKS:
        runs = pd.read_csv(out / "finetune_runs" / f"{benchmark}.tsv", sep="\t")
        assert len(runs) == len(MODELS) * 7 and runs["hessian_trace"].notna().all()
        job = json.loads((out / "finetune" / benchmark / "llama-xs" / "0.json").read_text())
        row = runs[(runs["model"] == "llama-xs") & (runs["size"] == 0)]
        assert job["hessian_trace"] == pytest.approx(row["hessian_trace"].item(), rel=1e-9)
        assert (out / "figures" / f"hessian_{benchmark}.png").stat().st_size > 0


def test_every_finetune_records_the_hessian_bound_and_the_grid_reports_it(out):
    terms = pd.read_csv(out / "bound.tsv", sep="\t")
    for benchmark in BENCHMARKS:
        runs = pd.read_csv(out / "finetune_runs" / f"{benchmark}.tsv", sep="\t")
        trained = runs[runs["size"] > 0]
        assert trained[["train_loss", "train_loss_max", "hessian_distance"]].notna().all().all()
        assert runs.loc[runs["size"] == 0, "hessian_distance"].isna().all()  # no fine-tune, no distance
        assert (trained["train_loss_max"] >= trained["train_loss"]).all()
        job = json.loads((out / "finetune" / benchmark / "gpt2-xs" / "64.json").read_text())
        assert len(job["hessian_distance_per_matrix"]) > 1 and job["hessian_distance_batches"] == 2
        assert job["hessian_distance"] == pytest.approx(sum(job["hessian_distance_per_matrix"].values()), rel=1e-9)
        part = terms[terms["benchmark"] == benchmark]
        assert len(part) == len(MODELS) * 6
        assert (part["gap"] - (part["test_loss"] - part["train_loss"])).abs().max() < 1e-9
        assert (out / "figures" / f"bound_{benchmark}.png").stat().st_size > 0
    correlation = pd.read_csv(out / "bound_correlation.tsv", sep="\t")
    assert list(correlation["benchmark"]) == [*BENCHMARKS, "all"]
    assert (correlation["pearson"].abs() <= 1).all()
    assert "Pearson" in (out / "bound.md").read_text()


def test_the_grid_report_has_the_lensllm_papers_rmse_table(out):
    rmse = pd.read_csv(out / "rmse_by_model.tsv", sep="\t")
    assert sorted(rmse["model"]) == sorted(MODELS)
    assert list(rmse.columns[1:5]) == ["wiki RectifiedFit", "wiki LensLLM", "wiki LensLLM-NTK-fixed", "wiki LensLLM-NTK-fitted"]
    by_model = pd.read_csv(out / "prediction_by_model.tsv", sep="\t")
    errors = by_model[(by_model["benchmark"] == "wiki") & (by_model["method"] == "RectifiedFit") & (by_model["model"] == "gpt2-xs")]
    expected = 10 * float((errors["error"] ** 2).mean() ** 0.5)
    assert rmse.set_index("model").loc["gpt2-xs", "wiki RectifiedFit"] == pytest.approx(expected, rel=1e-6)
    assert "x 10^-1" in (out / "prediction_error.md").read_text()
