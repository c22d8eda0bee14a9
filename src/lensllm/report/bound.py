"""The table and the figure of the Hessian-based PAC-Bayes bound, measured along every curve (the
terms themselves: `lensllm.probes.bound`).

- `bound_markdown`: the correlation between the distance term and the measured generalization gap
  per benchmark, where the distance term overtakes the remainder scale on each curve against the AtS
  transition, and every term per model and size.
- `plot_bound`: one panel per model: the gap, the distance term and the remainder scale against n.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.ticker import FormatStrFormatter, NullFormatter

from lensllm.report.figures import plt, save_figure
from lensllm.report.tables import number


def bound_markdown(terms: pd.DataFrame, correlation: pd.DataFrame, crossover: pd.DataFrame) -> str:
    """The correlation table, the crossover of each curve, then each benchmark's terms per model and
    size (`bound_terms`, `bound_correlation` and `phase_crossover` of `lensllm.probes.bound`)."""
    lines = ["# The Hessian-based PAC-Bayes bound, measured", "",
             "Correlation between the Hessian distance term sqrt(C sum_i H_i / n) and the measured gap "
             "(test loss - training loss) over every (model, size > 0); log-log: over the rows where both are positive.", "",
             "| benchmark | points | Pearson | Spearman | Pearson (log-log) |", "|---|---|---|---|---|"]
    for row in correlation.itertuples(index=False):
        cells = " | ".join(number(value, "+.2f") for value in (row.pearson, row.spearman, row.pearson_log))
        lines.append(f"| {row.benchmark} | {row.n_points} | {cells} |")
    lines += ["", "Where the distance term overtakes the remainder scale n^(-3/4) log(1/delta) (its constant taken as 1) "
              "for good, against the AtS transition:", "", "| benchmark | model | crossover n | AtS transition |", "|---|---|---|---|"]
    for row in crossover.itertuples(index=False):
        lines.append(f"| {row.benchmark} | {row.model} | {_size(row.crossover)} | {_size(row.transition)} |")
    for benchmark in dict.fromkeys(terms["benchmark"]):
        lines += ["", f"## {benchmark}", "",
                  "| model | n | test loss | train loss | gap | C | sum H_i | distance term | n^-3/4 log(1/delta) | AtS transition |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in terms[terms["benchmark"] == benchmark].itertuples(index=False):
            lines.append(f"| {r.model} | {r.size} | {r.test_loss:.4f} | {r.train_loss:.4f} | {r.gap:+.4f} | {r.C:.3f} | "
                         f"{r.hessian_distance:.4g} | {r.distance_term:.4g} | {r.remainder_scale:.4g} | {_size(r.transition)} |")
    return "\n".join(lines) + "\n"


def _size(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{int(value)}"


def plot_bound(terms: pd.DataFrame, path: str | os.PathLike) -> None:
    """One panel per model (log-log against n): the measured gap (points, where positive), the
    distance term sqrt(C sum_i H_i / n) and the remainder scale n^(-3/4) log(1/delta), the AtS
    transition as a dotted line."""
    models = list(dict.fromkeys(terms["model"]))
    cols = min(3, len(models))
    rows = int(np.ceil(len(models) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows + 0.8), squeeze=False)
    for ax, model in zip(axes.ravel(), models):
        part = terms[terms["model"] == model].sort_values("size")
        positive = part[part["gap"] > 0]
        ax.loglog(positive["size"], positive["gap"], "ko", ms=3, label="measured gap (test - train)")
        ax.loglog(part["size"], part["distance_term"], "-", color="tab:red", lw=1.2, label="sqrt(C sum H_i / n)")
        ax.loglog(part["size"], part["remainder_scale"], "--", color="tab:gray", lw=1, label="n^-3/4 log(1/delta)")
        transition = part["transition"].iloc[0]
        if np.isfinite(transition):
            ax.axvline(transition, color="tab:blue", ls=":", lw=1, label="AtS transition")
        ax.set_title(model[-28:], fontsize=8)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FormatStrFormatter("%g"))
            axis.set_minor_formatter(NullFormatter())
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(models):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    benchmark = terms["benchmark"].iloc[0]
    fig.suptitle(f"{benchmark}: generalization gap and the terms of the Hessian PAC-Bayes bound vs n", fontsize=10)
    fig.tight_layout(rect=(0, 0.35 / fig.get_figheight(), 1, 1))
    save_figure(fig, path)
