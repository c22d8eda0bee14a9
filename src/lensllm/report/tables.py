"""Markdown and LaTeX rendering shared by the run's tables (`lensllm.report.run`) and the paper's
(`lensllm.report.paper`).

- `table1_layout`: the layout of Table 1 of Lin et al. (2024) from a long table (columns benchmark,
  method, metric, ratio, value): rows (metric, ratio), columns (benchmark, method), each in the order
  it first comes.
- `table1_markdown` / `table1_latex`: that layout as a Markdown table or a booktabs tabular, values x
  `scale` with one decimal, the best value of a row within each benchmark in bold and the second
  underlined (ranked on the printed values, ties sharing a rank); the LaTeX groups each benchmark's
  columns under its name, as the paper does.
- `number`: a value in a format, a dash where there is none; `tex`: LaTeX escaping.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DASH = "—"


def tex(text) -> str:
    """`text` with LaTeX's special characters _, & and % escaped."""
    return str(text).replace("_", "\\_").replace("&", "\\&").replace("%", "\\%")


def number(value, spec: str = ".4f") -> str:
    """`value` formatted by `spec`, or a dash for None, NaN and infinity."""
    return DASH if value is None or not np.isfinite(value) else format(value, spec)


def table1_layout(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows (metric, ratio), columns (benchmark, method), the `value` of each."""
    wide = rows.pivot_table(index=["metric", "ratio"], columns=["benchmark", "method"], values="value", sort=False)
    benchmarks = list(dict.fromkeys(rows["benchmark"]))
    methods = list(dict.fromkeys(rows["method"]))
    return wide[[(b, m) for b in benchmarks for m in methods if (b, m) in wide.columns]]


def _ranks(row: pd.Series, scale: float) -> dict[tuple[str, str], int]:
    """Rank 1 and 2 (highest printed value; ties share a rank) within each benchmark of a table row."""
    ranks = {}
    for benchmark in dict.fromkeys(b for b, _ in row.index):
        shown = {(benchmark, m): round(scale * v, 1) for m, v in row[benchmark].items() if np.isfinite(v)}
        distinct = sorted(set(shown.values()), reverse=True)
        ranks.update({cell: distinct.index(v) + 1 for cell, v in shown.items() if distinct.index(v) < 2})
    return ranks


def _cells(row: pd.Series, scale: float, bold: str, underline: str) -> list[str]:
    """Each value of a table row x `scale`, one decimal, rank 1 formatted by `bold`, rank 2 by `underline`."""
    ranks = _ranks(row, scale)
    marks = {1: bold, 2: underline}
    return [marks.get(ranks.get(cell), "{}").format(number(scale * value, ".1f")) for cell, value in row.items()]


def table1_markdown(wide: pd.DataFrame, scale: float = 1.0) -> str:
    """`table1_layout` as Markdown, x `scale`: the best of a row per benchmark in bold, the second underlined."""
    lines = ["| Metric | Ratio | " + " | ".join(f"{b} {m}" for b, m in wide.columns) + " |",
             "|" + "---|" * (len(wide.columns) + 2)]
    for (metric, ratio), row in wide.iterrows():
        lines.append(f"| {metric} | 1/{ratio} | " + " | ".join(_cells(row, scale, "**{}**", "<u>{}</u>")) + " |")
    return "\n".join(lines) + "\n"


def table1_latex(wide: pd.DataFrame, scale: float = 1.0) -> str:
    """`table1_layout` as a booktabs tabular, x `scale`: a column group per benchmark, the best of a
    row per benchmark in bold, the second underlined."""
    benchmarks = list(dict.fromkeys(b for b, _ in wide.columns))
    spans = [(b, sum(1 for c in wide.columns if c[0] == b)) for b in benchmarks]
    lines = [
        "\\begin{tabular}{ll" + "r" * len(wide.columns) + "}",
        "\\toprule",
        " & & " + " & ".join(f"\\multicolumn{{{n}}}{{c}}{{{tex(b)}}}" for b, n in spans) + " \\\\",
        "Metric & Ratio & " + " & ".join(tex(m) for _, m in wide.columns) + " \\\\",
        "\\midrule",
    ]
    for (metric, ratio), row in wide.iterrows():
        lines.append(f"{metric} & 1/{ratio} & " + " & ".join(_cells(row, scale, "\\textbf{{{}}}", "\\underline{{{}}}")) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines).replace(DASH, "--") + "\n"
