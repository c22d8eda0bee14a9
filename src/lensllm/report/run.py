"""The tables of a run, in the layout of the papers (the run's figures: `lensllm.report.run_figures`).

- `selection_markdown` / `selection_latex`: Table 1 of Lin et al. (2024): rows metric-ratio,
  columns benchmark-method; per row and benchmark the best value in bold, the second underlined
  (`lensllm.report.tables`). The Markdown adds each method's compute at each budget (`flops_markdown`);
  `write_selection_tables` writes both.
- `prediction_markdown`: the RMSE of the predicted target loss per method and budget, and each
  model's error, for the methods that predict a loss; `rmse_by_model`: the LensLLM paper's per-model
  RMSE table.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from lensllm.atomic import write_text
from lensllm.report.tables import number, table1_latex, table1_layout, table1_markdown


# A Markdown table wider than this many value columns is written as one table per benchmark.
MAX_MARKDOWN_COLUMNS = 12


def _per_benchmark(selection: pd.DataFrame, render) -> str | None:
    """`render` of each benchmark's rows under a heading, when the whole table would be too wide."""
    benchmarks = list(dict.fromkeys(selection["benchmark"]))
    if len(benchmarks) < 2 or len(table1_layout(selection).columns) <= MAX_MARKDOWN_COLUMNS:
        return None
    return "\n".join(f"### {b}\n\n" + render(selection[selection["benchmark"] == b]) for b in benchmarks)


def selection_markdown(selection: pd.DataFrame) -> str:
    """The selection table as Markdown: best value of a row per benchmark in bold, second underlined;
    one table per benchmark when all of them would pass `MAX_MARKDOWN_COLUMNS` columns."""
    split = _per_benchmark(selection, selection_markdown)
    return split if split is not None else table1_markdown(table1_layout(selection))


def selection_latex(selection: pd.DataFrame) -> str:
    """The selection table as a LaTeX tabular (booktabs), bold best and underlined second."""
    return table1_latex(table1_layout(selection))


def flops_markdown(selection: pd.DataFrame, column: str = "flops") -> str:
    """The FLOPs (or, with column="energy_joules", the measured joules) each method was charged at
    each budget, Markdown; one table per benchmark when all of them would pass
    `MAX_MARKDOWN_COLUMNS` columns. An unmeasured energy shows as a dash."""
    split = _per_benchmark(selection, lambda part: flops_markdown(part, column))
    if split is not None:
        return split
    costs = selection[selection["metric"] == "PearCorr"].pivot_table(
        index="ratio", columns=["benchmark", "method"], values=column, sort=False, dropna=False
    )
    columns = [c for c in table1_layout(selection).columns if c in costs.columns]
    lines = ["| Ratio | " + " | ".join(f"{b} {m}" for b, m in columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for ratio, row in costs.sort_index(ascending=False).iterrows():
        lines.append(f"| 1/{ratio} | " + " | ".join(number(row[c], ".3g") for c in columns) + " |")
    return "\n".join(lines) + "\n"


def prediction_markdown(errors: pd.DataFrame, by_model: pd.DataFrame) -> str:
    """RMSE of the predicted target loss (rows benchmark and ratio, a column per method), then the
    error (predicted - true) of each model."""
    lines = ["# Prediction error at the target size", "", "RMSE over the models:", ""]
    methods = list(dict.fromkeys(errors["method"]))
    lines += ["| Benchmark | Ratio | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 2)]
    rmse = errors.pivot_table(index=["benchmark", "ratio"], columns="method", values="rmse", sort=False)
    for (benchmark, ratio), row in rmse.iterrows():
        lines.append(f"| {benchmark} | 1/{ratio} | " + " | ".join(number(row.get(m)) for m in methods) + " |")
    lines += ["", "Error of each model (predicted - true loss):", ""]
    lines += ["| Benchmark | Ratio | Model | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 3)]
    table = by_model.pivot_table(index=["benchmark", "ratio", "model"], columns="method", values="error", sort=False)
    for (benchmark, ratio, model), row in table.iterrows():
        lines.append(f"| {benchmark} | 1/{ratio} | {model} | " + " | ".join(number(row.get(m), "+.4f") for m in methods) + " |")
    per_model = rmse_by_model(by_model)
    if len(per_model.columns) > 1:
        lines += ["", "RMSE of each model over the budgets, x 10^-1 (the LensLLM paper's table; `rmse_by_model.tsv`; "
                  "bold: the lower of a benchmark's values):", "", rmse_by_model_markdown(per_model).rstrip("\n")]
    return "\n".join(lines) + "\n"


# The LensLLM paper's per-model RMSE table: the rectified law against LensLLM (every variant run).
RMSE_TABLE_METHODS = ["RectifiedFit", "LensLLM", "LensLLM-NTK-fixed", "LensLLM-NTK-fitted"]


def rmse_by_model(by_model: pd.DataFrame) -> pd.DataFrame:
    """The LensLLM paper's RMSE layout, from the prediction errors at the target: one row per model,
    a column `<benchmark> <method>` per benchmark and method of `RMSE_TABLE_METHODS` that ran, each
    value sqrt(mean over the budgets of (predicted - true)^2) in units of 10^-1 (x 10), as the paper
    prints it. A model a method left out at some budget is scored on the budgets it has."""
    data = by_model[by_model["method"].isin(RMSE_TABLE_METHODS)].dropna(subset=["error"])
    if data.empty:
        return pd.DataFrame(columns=["model"])
    rmse = data.groupby(["model", "benchmark", "method"], sort=False)["error"].apply(lambda e: 10 * float(np.sqrt(np.mean(e**2))))
    wide = rmse.unstack(["benchmark", "method"])
    columns = [(b, m) for b in dict.fromkeys(data["benchmark"]) for m in RMSE_TABLE_METHODS if (b, m) in wide.columns]
    wide = wide[columns].reindex(list(dict.fromkeys(data["model"])))
    wide.columns = [f"{b} {m}" for b, m in columns]
    return wide.rename_axis("model").reset_index()


def rmse_by_model_markdown(table: pd.DataFrame) -> str:
    """`rmse_by_model` as Markdown, the lower of each benchmark's values in a row in bold; one table
    per benchmark when it would pass `MAX_MARKDOWN_COLUMNS` columns."""
    columns = [c for c in table.columns if c != "model"]
    benchmarks = list(dict.fromkeys(c.split(" ", 1)[0] for c in columns))
    groups = [[c for c in columns if c.split(" ", 1)[0] == b] for b in benchmarks]
    if len(columns) <= MAX_MARKDOWN_COLUMNS:
        groups = [columns]
    parts = []
    for group in groups:
        lines = ["| Model | " + " | ".join(group) + " |", "|" + "---|" * (len(group) + 1)]
        for _, row in table.iterrows():
            cells = []
            for column in group:
                finite = [row[c] for c in group if c.split(" ", 1)[0] == column.split(" ", 1)[0] and np.isfinite(row[c])]
                text = number(row[column], ".3f")
                cells.append(f"**{text}**" if len(finite) > 1 and row[column] == min(finite) else text)
            lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def write_selection_tables(selection: pd.DataFrame, markdown_path: str | os.PathLike, latex_path: str | os.PathLike) -> None:
    """Write the Markdown (with the FLOPs table) and LaTeX renderings of the selection table atomically."""
    markdown = selection_markdown(selection) + "\nFLOPs charged to each method (fine-tunes, plus NTK or weight spectra):\n\n"
    markdown += flops_markdown(selection)
    if "energy_joules" in selection and selection["energy_joules"].notna().any():
        markdown += "\nEnergy of each method's fine-tunes (joules, NVML and RAPL counters; a dash where not measured):\n\n"
        markdown += flops_markdown(selection, "energy_joules")
    write_text(markdown_path, markdown)
    write_text(latex_path, selection_latex(selection))
