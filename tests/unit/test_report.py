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
