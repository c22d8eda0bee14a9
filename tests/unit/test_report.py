import pandas as pd

from lensllm.report import selection_latex, selection_markdown


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
    from lensllm.report import flops_markdown

    selection = _selection()
    selection.loc[selection["method"] == "LensLLM", "flops"] = 2.5e12
    text = flops_markdown(selection)
    assert text.splitlines()[0] == "| Ratio | flan AtS | flan ZeroShot | flan SubTuning | flan LensLLM |"
    assert "| 1/8 | 1 | 1 | 1 | 2.5e+12 |" in text


def test_prediction_tables_put_methods_side_by_side():
    from lensllm.report import prediction_markdown

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

    from lensllm.losstable import LossTable
    from lensllm.report import plot_hessian

    table = LossTable("toy", ("a", "b"), (0, 16, 32), np.array([[5.0, 4.0, 3.5], [6.0, 4.5, 4.0]]), np.array([1e6, 2e6]), ("x", "y"))
    runs = pd.DataFrame([[m, s, 100.0 + s, 5.0] for m in ("a", "b") for s in (0, 16, 32)],
                        columns=["model", "size", "hessian_trace", "hessian_trace_stderr"])
    plot_hessian(table, runs, {"a": 16, "b": 32}, tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
