import numpy as np
import pandas as pd

from lensllm.report.run import selection_latex, selection_markdown, write_selection_tables


def _selection():
    rows = []
    for method, value in [("AtS", 90.9), ("ZeroShot", -10.7), ("SubTuning", 60.9), ("LensLLM", 60.9)]:
        rows.append(["flan", method, 8, "PearCorr", value, value, 1.0, 0.5])
    return pd.DataFrame(rows, columns=["benchmark", "method", "ratio", "metric", "value", "value_raw", "flops", "cost_reduction"])


def test_markdown_marks_the_best_bold_and_the_second_underlined():
    text = selection_markdown(_selection())
    assert text.splitlines()[0] == "| Metric | Ratio | flan AtS | flan ZeroShot | flan SubTuning | flan LensLLM |"
    assert "| PearCorr | 1/8 | **90.9** | -10.7 | <u>60.9</u> | <u>60.9</u> |" in text


def test_latex_table_has_benchmark_spans_and_marks():
    text = selection_latex(_selection())
    assert "\\multicolumn{4}{c}{flan}" in text
    assert "PearCorr & 1/8 & \\textbf{90.9} & -10.7 & \\underline{60.9} & \\underline{60.9} \\\\" in text


def test_flops_table_shows_each_methods_charge_per_budget():
    from lensllm.report.run import flops_markdown

    selection = _selection()
    selection.loc[selection["method"] == "LensLLM", "flops"] = 2.5e12
    text = flops_markdown(selection)
    assert text.splitlines()[0] == "| Ratio | flan AtS | flan ZeroShot | flan SubTuning | flan LensLLM |"
    assert "| 1/8 | 1 | 1 | 1 | 2.5e+12 |" in text


def test_prediction_tables_put_methods_side_by_side():
    from lensllm.report.run import prediction_markdown

    errors = pd.DataFrame([["wiki", "AtS", 2, 0.05, 3, 0], ["wiki", "LensLLM-NTK-fixed", 2, 0.02, 3, 0]],
                          columns=["benchmark", "method", "ratio", "rmse", "n_models", "n_excluded"])
    by_model = pd.DataFrame([["wiki", "AtS", 2, "m1", 3.1, 3.0, 0.1], ["wiki", "LensLLM-NTK-fixed", 2, "m1", 2.98, 3.0, -0.02]],
                            columns=["benchmark", "method", "ratio", "model", "predicted", "true", "error"])
    text = prediction_markdown(errors, by_model)
    assert "| Benchmark | Ratio | AtS | LensLLM-NTK-fixed |" in text
    assert "| wiki | 1/2 | 0.0500 | 0.0200 |" in text
    assert "| wiki | 1/2 | m1 | +0.1000 | -0.0200 |" in text


def test_hessian_figure_is_written(tmp_path):
    import numpy as np

    from lensllm.curves.losstable import LossTable
    from lensllm.report.run_figures import plot_hessian

    table = LossTable("toy", ("a", "b"), (0, 16, 32), np.array([[5.0, 4.0, 3.5], [6.0, 4.5, 4.0]]), np.array([1e6, 2e6]), ("x", "y"))
    runs = pd.DataFrame([[m, s, 100.0 + s, 5.0] for m in ("a", "b") for s in (0, 16, 32)],
                        columns=["model", "size", "hessian_trace", "hessian_trace_stderr"])
    plot_hessian(table, runs, {"a": 16, "b": 32}, tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"


def test_a_table_wider_than_twelve_columns_is_one_table_per_benchmark():
    from lensllm.report.run import flops_markdown

    rows = [[b, f"M{i}", 8, "PearCorr", float(i), float(i), 1.0, 0.5] for b in ("flan", "gigaword", "wmt19") for i in range(5)]
    selection = pd.DataFrame(rows, columns=["benchmark", "method", "ratio", "metric", "value", "value_raw", "flops", "cost_reduction"])
    text = selection_markdown(selection)
    assert [line for line in text.splitlines() if line.startswith("###")] == ["### flan", "### gigaword", "### wmt19"]
    assert "| Metric | Ratio | gigaword M0 | gigaword M1 | gigaword M2 | gigaword M3 | gigaword M4 |" in text
    assert flops_markdown(selection).count("| Ratio |") == 3
    assert "\\multicolumn{5}{c}{wmt19}" in selection_latex(selection)  # the LaTeX keeps the paper's layout


def test_the_selection_markdown_carries_measured_energy_beside_flops(tmp_path):
    from lensllm.selection.evaluation import score_selections
    from lensllm.curves.losstable import LossTable
    from lensllm.selection import select

    table = LossTable("toy", ("a", "b"), (0, 1, 2, 4, 8), np.array([[5.0, 4.5, 4.0, 3.0, 2.0], [5.0, 4.8, 4.5, 4.0, 3.5]]),
                      np.array([1.0, 2.0]), ("x", "x"))
    flops = {(m, s): 10.0 * s for m in table.models for s in table.sizes}
    energy = {**{key: 2.0 * key[1] for key in flops}, ("b", 4): None}  # one fine-tune without a counter
    selections = [select("SubTuning", table, 2, 8), select("SubTuning", table, 4, 8)]
    rows, _ = score_selections(selections, table, flops, energy)
    assert (rows.loc[rows["ratio"] == 4, "energy_joules"] == 2.0 * 2 * 2).all()  # both fine-tunes at 2 measured
    assert rows.loc[rows["ratio"] == 2, "energy_joules"].isna().all()  # ("b", 4) was not: never guessed
    write_selection_tables(rows, tmp_path / "s.md", tmp_path / "s.tex")
    text = (tmp_path / "s.md").read_text()
    assert "Energy of each method's fine-tunes (joules" in text and "| 1/2 | —" in text and "| 1/4 | 8 |" in text
    rows, _ = score_selections(selections, table, flops)  # published curves: no energy, no table
    write_selection_tables(rows, tmp_path / "p.md", tmp_path / "p.tex")
    assert "Energy" not in (tmp_path / "p.md").read_text()


def test_rmse_by_model_is_the_lensllm_papers_layout_in_units_of_a_tenth():
    from lensllm.report.run import rmse_by_model, rmse_by_model_markdown

    rows = [
        # errors at two budgets: RMSE sqrt((0.03^2 + 0.04^2) / 2) = 0.03536 -> 0.354 x 10^-1
        ["wiki", "RectifiedFit", 2, "m1", 0.03], ["wiki", "RectifiedFit", 4, "m1", -0.04],
        ["wiki", "LensLLM-NTK-fixed", 2, "m1", 0.01], ["wiki", "LensLLM-NTK-fixed", 4, "m1", 0.01],
        ["wiki", "AtS", 2, "m1", 0.5],  # not a column of this table
        ["wiki", "RectifiedFit", 2, "m2", 0.02], ["wiki", "LensLLM-NTK-fixed", 2, "m2", float("nan")],  # left out
        ["debsum", "RectifiedFit", 2, "m1", 0.1], ["debsum", "LensLLM-NTK-fixed", 2, "m1", 0.2],
    ]
    by_model = pd.DataFrame([[b, m, r, model, 1.0, 1.0, e] for b, m, r, model, e in rows],
                            columns=["benchmark", "method", "ratio", "model", "predicted", "true", "error"])
    table = rmse_by_model(by_model)
    assert list(table.columns) == ["model", "wiki RectifiedFit", "wiki LensLLM-NTK-fixed", "debsum RectifiedFit", "debsum LensLLM-NTK-fixed"]
    m1 = table.set_index("model").loc["m1"]
    assert np.isclose(m1["wiki RectifiedFit"], 10 * np.sqrt((0.03**2 + 0.04**2) / 2))
    assert np.isclose(m1["wiki LensLLM-NTK-fixed"], 0.1)
    assert np.isnan(table.set_index("model").loc["m2", "wiki LensLLM-NTK-fixed"])
    text = rmse_by_model_markdown(table)
    assert "| m1 | 0.354 | **0.100** | **1.000** | 2.000 |" in text
    assert "| m2 | 0.200 | — | — | — |" in text
