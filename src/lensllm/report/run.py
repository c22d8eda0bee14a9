"""Tables and figures of a run, in the layout of the papers.

- `selection_markdown` / `selection_latex`: Table 1 of Lin et al. (2024): rows metric-ratio,
  columns benchmark-method; per row and benchmark the best value in bold, the second underlined.
  The Markdown adds each method's compute at each budget (`flops_markdown`).
- `prediction_markdown`: the RMSE of the predicted target loss per method and budget, and each
  model's error, for the methods that predict a loss.
- `plot_fit_curves`: per benchmark, each model's loss curve with each law's fit and AtS's
  transition marked.
- `plot_pearcorr`: PearCorr against the data budget per method; `plot_metric_cost`: PearCorr or
  RelAcc against the FLOPs charged per method (the Pareto view: up and to the left is better).
- `plot_hessian`: per benchmark, loss and Hessian trace against D, AtS's transition marked.
- `plot_recommendation` (select mode): each candidate's measured points up to the budget and one
  method's forecast, median and band, out to N.
Figures use the Agg backend with a fixed size and dpi, so they render the same everywhere.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, MaxNLocator, NullFormatter, NullLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lensllm.atomic import atomic_path, write_text  # noqa: E402
from lensllm.curves.laws import LAWS  # noqa: E402
from lensllm.curves.losstable import LossTable  # noqa: E402
from lensllm.selection.registry import ModelTerms, SelectionSettings  # noqa: E402
from lensllm.selection.uncertainty import UncertaintySettings, forecast  # noqa: E402

DPI = 120
_LAW_STYLE = {"rectified": ("tab:blue", "-"), "lensllm": ("tab:red", "--"), "vanilla": ("tab:green", ":")}


def _wide(selection: pd.DataFrame) -> pd.DataFrame:
    """Rows (metric, ratio), columns (benchmark, method), values as published (x100, 1 decimal)."""
    wide = selection.pivot_table(index=["metric", "ratio"], columns=["benchmark", "method"], values="value", sort=False)
    methods = list(dict.fromkeys(selection["method"]))
    benchmarks = list(dict.fromkeys(selection["benchmark"]))
    columns = [(b, m) for b in benchmarks for m in methods if (b, m) in wide.columns]
    return wide[columns]


def _ranks(row: pd.Series) -> dict[tuple[str, str], int]:
    """Rank 1 and 2 (highest values) within each benchmark of a table row."""
    ranks = {}
    for benchmark in dict.fromkeys(b for b, _ in row.index):
        values = row[benchmark].dropna().sort_values(ascending=False)
        distinct = list(dict.fromkeys(values))
        for method, value in values.items():
            position = distinct.index(value) + 1
            if position <= 2:
                ranks[(benchmark, method)] = position
    return ranks


def _format(value: float, rank: int | None, bold: str, underline: str) -> str:
    text = "—" if not np.isfinite(value) else f"{value:.1f}"
    if rank == 1:
        return bold.format(text)
    if rank == 2:
        return underline.format(text)
    return text


# A Markdown table wider than this many value columns is written as one table per benchmark.
MAX_MARKDOWN_COLUMNS = 12


def _per_benchmark(selection: pd.DataFrame, render) -> str | None:
    """`render` of each benchmark's rows under a heading, when the whole table would be too wide."""
    benchmarks = list(dict.fromkeys(selection["benchmark"]))
    if len(benchmarks) < 2 or len(_wide(selection).columns) <= MAX_MARKDOWN_COLUMNS:
        return None
    return "\n".join(f"### {b}\n\n" + render(selection[selection["benchmark"] == b]) for b in benchmarks)


def selection_markdown(selection: pd.DataFrame) -> str:
    """The selection table as Markdown: best value of a row per benchmark in bold, second underlined;
    one table per benchmark when all of them would pass `MAX_MARKDOWN_COLUMNS` columns."""
    split = _per_benchmark(selection, selection_markdown)
    if split is not None:
        return split
    wide = _wide(selection)
    header = "| Metric | Ratio | " + " | ".join(f"{b} {m}" for b, m in wide.columns) + " |"
    lines = [header, "|" + "---|" * (len(wide.columns) + 2)]
    for (metric, ratio), row in wide.iterrows():
        ranks = _ranks(row)
        cells = [_format(row[c], ranks.get(c), "**{}**", "<u>{}</u>") for c in wide.columns]
        lines.append(f"| {metric} | 1/{ratio} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def selection_latex(selection: pd.DataFrame) -> str:
    """The selection table as a LaTeX tabular (booktabs), bold best and underlined second."""
    wide = _wide(selection)
    benchmarks = list(dict.fromkeys(b for b, _ in wide.columns))
    spans = [(b, sum(1 for c in wide.columns if c[0] == b)) for b in benchmarks]
    lines = [
        "\\begin{tabular}{ll" + "r" * len(wide.columns) + "}",
        "\\toprule",
        " & & " + " & ".join(f"\\multicolumn{{{n}}}{{c}}{{{_tex(b)}}}" for b, n in spans) + " \\\\",
        "Metric & Ratio & " + " & ".join(_tex(m) for _, m in wide.columns) + " \\\\",
        "\\midrule",
    ]
    for (metric, ratio), row in wide.iterrows():
        ranks = _ranks(row)
        cells = [_format(row[c], ranks.get(c), "\\textbf{{{}}}", "\\underline{{{}}}") for c in wide.columns]
        lines.append(f"{metric} & 1/{ratio} & " + " & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines).replace("—", "--") + "\n"


def _tex(text: str) -> str:
    return text.replace("_", "\\_").replace("&", "\\&").replace("%", "\\%")


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
    columns = [c for c in _wide(selection).columns if c in costs.columns]
    lines = ["| Ratio | " + " | ".join(f"{b} {m}" for b, m in columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for ratio, row in costs.sort_index(ascending=False).iterrows():
        lines.append(f"| 1/{ratio} | " + " | ".join(_number(row[c], ".3g") for c in columns) + " |")
    return "\n".join(lines) + "\n"


def prediction_markdown(errors: pd.DataFrame, by_model: pd.DataFrame) -> str:
    """RMSE of the predicted target loss (rows benchmark and ratio, a column per method), then the
    error (predicted - true) of each model."""
    lines = ["# Prediction error at the target size", "", "RMSE over the models:", ""]
    methods = list(dict.fromkeys(errors["method"]))
    lines += ["| Benchmark | Ratio | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 2)]
    rmse = errors.pivot_table(index=["benchmark", "ratio"], columns="method", values="rmse", sort=False)
    for (benchmark, ratio), row in rmse.iterrows():
        lines.append(f"| {benchmark} | 1/{ratio} | " + " | ".join(_number(row.get(m)) for m in methods) + " |")
    lines += ["", "Error of each model (predicted - true loss):", ""]
    lines += ["| Benchmark | Ratio | Model | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 3)]
    table = by_model.pivot_table(index=["benchmark", "ratio", "model"], columns="method", values="error", sort=False)
    for (benchmark, ratio, model), row in table.iterrows():
        lines.append(f"| {benchmark} | 1/{ratio} | {model} | " + " | ".join(_number(row.get(m), "+.4f") for m in methods) + " |")
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
                text = _number(row[column], ".3f")
                cells.append(f"**{text}**" if len(finite) > 1 and row[column] == min(finite) else text)
            lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _number(value, spec: str = ".4f") -> str:
    return "—" if value is None or not np.isfinite(value) else format(value, spec)


def write_selection_tables(selection: pd.DataFrame, markdown_path: str | os.PathLike, latex_path: str | os.PathLike) -> None:
    """Write the Markdown (with the FLOPs table) and LaTeX renderings of the selection table atomically."""
    markdown = selection_markdown(selection) + "\nFLOPs charged to each method (fine-tunes, plus NTK or weight spectra):\n\n"
    markdown += flops_markdown(selection)
    if "energy_joules" in selection and selection["energy_joules"].notna().any():
        markdown += "\nEnergy of each method's fine-tunes (joules, NVML and RAPL counters; a dash where not measured):\n\n"
        markdown += flops_markdown(selection, "energy_joules")
    write_text(markdown_path, markdown)
    write_text(latex_path, selection_latex(selection))


def _save(fig: plt.Figure, path: str | os.PathLike | Sequence[str | os.PathLike]) -> None:
    """Write `fig` to `path` (or to each of a list of paths: PNG and PDF by extension), atomically."""
    for one in [path] if isinstance(path, (str, os.PathLike)) else path:
        with atomic_path(one) as tmp:
            fig.savefig(tmp, dpi=DPI, format=os.path.splitext(str(one))[1].lstrip(".") or "png")
    plt.close(fig)


def plot_fit_curves(table: LossTable, fits: pd.DataFrame, transitions: Mapping[str, int], path: str | os.PathLike) -> None:
    """Each model's curve (log-log), the fit of each law, and AtS's transition as a dotted line."""
    n = len(table.models)
    cols = min(6, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.4 * rows + 0.9), squeeze=False)
    sizes = np.array(table.train_sizes(), dtype=float)
    grid = np.geomspace(sizes[0], sizes[-1], 100)
    for ax, model in zip(axes.ravel(), table.models):
        ax.loglog(sizes, table.curve(model, table.train_sizes()), "k.", ms=4, label="observed")
        for _, fit in fits[fits["model"] == model].iterrows():
            if fit["status"] == "failed":
                continue
            law = LAWS[fit["law"]]
            params = {name: fit[name] for name in law.param_names}
            color, style = _LAW_STYLE.get(law.name, ("gray", "-"))
            ax.loglog(grid, law.predict(law.theta(params), grid), color=color, ls=style, lw=1, label=law.name)
        if model in transitions:
            ax.axvline(transitions[model], color="gray", ls=":", lw=1, label="AtS transition")
        ax.set_title(model[-28:], fontsize=7)
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(f"{table.benchmark}: fine-tuning loss vs data size, fitted laws", fontsize=10)
    # Fixed margins in inches: tight_layout measures every tick label of every panel (8 s on 30 panels).
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=0.45 / width, right=1 - 0.1 / width, bottom=0.75 / height, top=1 - 0.7 / height,
        wspace=0.35, hspace=0.45,
    )
    _save(fig, path)


def plot_hessian(table: LossTable, runs: pd.DataFrame, transitions: Mapping[str, int], path: str | os.PathLike) -> None:
    """Loss (top) and Hessian trace of the training loss (bottom) against D for every model, with
    one standard error as a band and each model's AtS transition as a dotted line in its colour.
    D = 0 (the pre-trained model) is drawn at half the smallest size."""
    sizes = np.array(table.sizes, dtype=float)
    x = np.where(sizes > 0, sizes, sizes[sizes > 0].min() / 2)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.0), sharex=True)
    for i, model in enumerate(table.models):
        color = plt.cm.tab10(i % 10)
        rows = runs[runs["model"] == model].set_index("size").reindex(table.sizes)
        top.plot(x, table.curve(model, table.sizes), marker="o", ms=3, color=color, label=model)
        trace, err = rows["hessian_trace"].to_numpy(float), rows["hessian_trace_stderr"].to_numpy(float)
        bottom.plot(x, trace, marker="o", ms=3, color=color)
        bottom.fill_between(x, trace - err, trace + err, color=color, alpha=0.15, lw=0)
        if model in transitions:
            for ax in (top, bottom):
                ax.axvline(transitions[model], color=color, ls=":", lw=1)
    top.set_xscale("log")
    top.set_ylabel("test loss")
    top.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    bottom.set_ylabel("Hessian trace (Hutchinson)")
    bottom.set_xlabel("fine-tuning data size D (0 = pre-trained)")
    bottom.set_xticks(x)
    bottom.set_xticklabels([f"{int(s)}" for s in sizes], fontsize=7)
    bottom.xaxis.set_minor_locator(NullLocator())
    top.legend(fontsize=6, ncol=2)
    fig.suptitle(f"{table.benchmark}: loss and curvature vs D (dotted: AtS phase transition)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _panels(selection: pd.DataFrame, metric: str):
    data = selection[selection["metric"] == metric]
    benchmarks = list(dict.fromkeys(data["benchmark"]))
    fig, axes = plt.subplots(1, len(benchmarks), figsize=(4.2 * len(benchmarks), 3.4), squeeze=False)
    return data, benchmarks, fig, axes.ravel()


def plot_pearcorr(selection: pd.DataFrame, path: str | os.PathLike) -> None:
    """PearCorr of each method against the data budget (target / ratio), one panel per benchmark."""
    data, benchmarks, fig, axes = _panels(selection, "PearCorr")
    for ax, benchmark in zip(axes, benchmarks):
        for method, rows in data[data["benchmark"] == benchmark].groupby("method", sort=False):
            rows = rows.sort_values("ratio", ascending=False)
            ax.plot(1.0 / rows["ratio"], rows["value_raw"], marker="o", ms=3, label=method)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("data budget (fraction of the target size)")
        ax.set_ylabel("PearCorr (x100)")
        ax.set_title(benchmark)
        ax.axhline(0, color="gray", lw=0.5)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def plot_metric_cost(selection: pd.DataFrame, metric: str, path: str | os.PathLike) -> None:
    """`metric` (PearCorr or RelAcc) of each method against the FLOPs charged for it at each budget
    (its fine-tunes and other compute on the models), one panel per benchmark."""
    data, benchmarks, fig, axes = _panels(selection, metric)
    for ax, benchmark in zip(axes, benchmarks):
        for method, rows in data[data["benchmark"] == benchmark].groupby("method", sort=False):
            rows = rows[rows["flops"] > 0].sort_values("flops")
            if len(rows):
                ax.plot(rows["flops"], rows["value_raw"], marker="o", ms=3, label=method)
        ax.set_xscale("log")
        ax.set_xlabel("FLOPs charged")
        ax.set_ylabel(f"{metric} (x100)")
        ax.set_title(benchmark)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def plot_recommendation(table: LossTable, full_size: int, budget: int, method: str, path: str | os.PathLike,
                        settings: SelectionSettings | None = None, uncertainty: UncertaintySettings | None = None,
                        terms: ModelTerms | None = None, points: int = 12) -> None:
    """Each candidate's measured points up to the budget, and `method`'s predicted curve with its band
    (the forecast at sizes from 2 x budget out to N, log-spaced) on log-log axes."""
    uncertainty = uncertainty or UncertaintySettings()
    targets = sorted({int(round(x)) for x in np.geomspace(2 * budget, full_size, points)} | {full_size})
    curves = [forecast(method, table, [budget], t, settings, terms, uncertainty)[0] for t in targets]
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, model in enumerate(table.models):
        color = colors[k % len(colors)]
        sizes = table.train_sizes(budget)
        ax.plot(sizes, table.curve(model, sizes), "o", color=color, label=model)
        xs, med, lo, hi = [], [], [], []
        for t, f in zip(targets, curves):
            if model in f.models:
                i = f.models.index(model)
                low, high = f.interval(uncertainty.level)
                xs.append(t)
                med.append(f.median[i])
                lo.append(low[i])
                hi.append(high[i])
        if xs:
            ax.plot([sizes[-1], *xs], [table.curve(model, [sizes[-1]])[0], *med], "-", color=color)
            ax.fill_between(xs, lo, hi, color=color, alpha=0.15)
    ax.axvline(budget, color="grey", linestyle=":", linewidth=1)
    ax.axvline(full_size, color="black", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_major_locator(MaxNLocator(6))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("training examples D (dotted: budget, dashed: N)")
    ax.set_ylabel("test loss")
    ax.set_title(f"{table.benchmark}: measured up to {budget}, {method} forecast to N = {full_size:,} "
                 f"({uncertainty.level:.0%} band)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    _save(fig, path)
