"""LensLLM's Hessian-based PAC-Bayes bound (Ju, Li and Zhang, ICML 2022), measured along every curve.

For a model fine-tuned from the pre-trained weights W^s to W on n examples, with probability at
least 1 - delta, for any epsilon > 0 (as we read Ju et al.):

    L(W) <= (1 + epsilon) * Lhat(W) + (1 + epsilon) * sqrt(C * sum_i H_i / n) + xi,
    H_i = max over training batches of v_i^T [Hessian of the batch loss w.r.t. W_i] v_i,
    v_i = vec(W_i - W_i^s),   xi = O(n^(-3/4) * log(1 / delta)),

i over the weight matrices. Per fine-tune (model, size n > 0) the job measures (`lensllm.training.finetune`):
- L(W): the test loss (mean per-token cross-entropy on the held-out split);
- Lhat(W): the training loss of the fine-tuned model on its own n examples (`train_loss`);
- H_i: one Hessian-vector product per matrix and batch along v_i, maximised over the first
  `finetune.bound_batches` training batches (`lensllm.probes.hessian.hessian_distance`).

What is assumed, since the theory leaves it open:
- C, a bound on the loss: cross-entropy has none, so C is the largest per-example training loss of
  the fine-tuned model (`train_loss_max`), as in practice;
- the constant of xi is unknown: the table and figure show its scale n^(-3/4) * log(1/delta) with
  constant 1 and delta = `DELTA`;
- sum_i H_i can be negative (a matrix moved along a direction of negative curvature); the distance
  term is then 0 (sqrt of max(., 0)).

`bound_terms` gives, per fine-tune, the measured generalization gap L - Lhat, the Hessian distance
term sqrt(C * sum_i H_i / n) and the remainder scale; `bound_correlation` the Pearson and Spearman
correlation between the distance term and the gap across the sizes and models of a benchmark (the
measure Ju et al. report). LensLLM's phase statement: in the pre-power phase the n^(-3/4) remainder
dominates, in the power phase the C n^(-beta) distance term does; the figure marks each model's AtS
transition so the two can be compared, and `phase_crossover` gives, per curve, the size from which
the distance term stays above the remainder scale.
"""

from __future__ import annotations

import math
import os
from typing import Mapping

import numpy as np
import pandas as pd

from lensllm.curves.losstable import LossTable

DELTA = 0.05
BOUND_COLUMNS = ["benchmark", "model", "size", "test_loss", "train_loss", "gap", "C", "hessian_distance", "distance_term",
                 "remainder_scale", "transition"]
CORRELATION_COLUMNS = ["benchmark", "n_points", "pearson", "spearman", "pearson_log"]


class BoundError(ValueError):
    """A runs table without the bound's measurements; the message says which and how to get them."""


def bound_terms(table: LossTable, runs: pd.DataFrame, transitions: Mapping[str, int], delta: float = DELTA) -> pd.DataFrame:
    """One row per fine-tune of size n > 0 (columns `BOUND_COLUMNS`): the gap L - Lhat, C,
    sum_i H_i, the distance term sqrt(C * max(sum_i H_i, 0) / n), the remainder scale
    n^(-3/4) log(1/delta), and the model's AtS transition size (NaN where AtS found none)."""
    needed = ["train_loss", "train_loss_max", "hessian_distance"]
    missing = [c for c in needed if c not in runs.columns]
    if missing or runs.loc[runs["size"] > 0, needed].isna().all().any():
        raise BoundError(f"{table.benchmark}: the runs table has no {', '.join(missing or needed)}; the fine-tuning jobs "
                         "measure them with finetune.bound_batches > 0")
    test = {(m, s): loss for m in table.models for s, loss in zip(table.sizes, table.curve(m, table.sizes))}
    rows = []
    for run in runs[runs["size"] > 0].itertuples(index=False):
        n = int(run.size)
        gap = test[(run.model, n)] - run.train_loss
        term = math.sqrt(run.train_loss_max * max(run.hessian_distance, 0.0) / n)
        rows.append([table.benchmark, run.model, n, test[(run.model, n)], run.train_loss, gap, run.train_loss_max,
                     run.hessian_distance, term, n ** -0.75 * math.log(1 / delta), transitions.get(run.model, np.nan)])
    return pd.DataFrame(rows, columns=BOUND_COLUMNS)


def bound_correlation(terms: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark (and over all of them, 'all'): the Pearson and Spearman correlation between the
    distance term and the measured gap over every (model, size), and Pearson's on log-log scales
    (rows with a positive gap and term)."""
    rows = []
    groups = [(b, terms[terms["benchmark"] == b]) for b in dict.fromkeys(terms["benchmark"])]
    if len(groups) > 1:
        groups.append(("all", terms))
    for benchmark, part in groups:
        part = part[np.isfinite(part["gap"]) & np.isfinite(part["distance_term"])]
        positive = part[(part["gap"] > 0) & (part["distance_term"] > 0)]
        rows.append([benchmark, len(part), _pearson(part["distance_term"], part["gap"]),
                     _pearson(part["distance_term"].rank(), part["gap"].rank()),
                     _pearson(np.log(positive["distance_term"]), np.log(positive["gap"]))])
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def phase_crossover(terms: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark and model: the smallest n from which the distance term is at least the
    remainder scale at every larger measured n (NaN if it never is: the remainder dominates
    throughout), beside the AtS transition. With the remainder's unknown constant taken as 1, this
    is where the bound's power-phase term takes over, to compare with AtS's phase transition."""
    rows = []
    for (benchmark, model), part in terms.groupby(["benchmark", "model"], sort=False):
        part = part.sort_values("size")
        dominates = (part["distance_term"] >= part["remainder_scale"]).to_numpy()
        sizes = part["size"].to_numpy()
        tail = [i for i in range(len(sizes)) if dominates[i:].all()]
        rows.append([benchmark, model, float(sizes[tail[0]]) if tail else np.nan, part["transition"].iloc[0]])
    return pd.DataFrame(rows, columns=["benchmark", "model", "crossover", "transition"])


def _pearson(x, y) -> float:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def bound_markdown(terms: pd.DataFrame, correlation: pd.DataFrame) -> str:
    """The correlation table, then each benchmark's terms per model and size."""
    lines = ["# The Hessian-based PAC-Bayes bound, measured", "",
             "Correlation between the Hessian distance term sqrt(C sum_i H_i / n) and the measured gap "
             "(test loss - training loss) over every (model, size > 0); log-log: over the rows where both are positive.", "",
             "| benchmark | points | Pearson | Spearman | Pearson (log-log) |", "|---|---|---|---|---|"]
    for row in correlation.itertuples(index=False):
        lines.append(f"| {row.benchmark} | {row.n_points} | {_fmt(row.pearson)} | {_fmt(row.spearman)} | {_fmt(row.pearson_log)} |")
    lines += ["", "Where the distance term overtakes the remainder scale n^(-3/4) log(1/delta) (its constant taken as 1) "
              "for good, against the AtS transition:", "", "| benchmark | model | crossover n | AtS transition |", "|---|---|---|---|"]
    for row in phase_crossover(terms).itertuples(index=False):
        lines.append(f"| {row.benchmark} | {row.model} | {_size(row.crossover)} | {_size(row.transition)} |")
    for benchmark in dict.fromkeys(terms["benchmark"]):
        lines += ["", f"## {benchmark}", "",
                  "| model | n | test loss | train loss | gap | C | sum H_i | distance term | n^-3/4 log(1/delta) | AtS transition |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in terms[terms["benchmark"] == benchmark].itertuples(index=False):
            lines.append(f"| {r.model} | {r.size} | {r.test_loss:.4f} | {r.train_loss:.4f} | {r.gap:+.4f} | {r.C:.3f} | "
                         f"{r.hessian_distance:.4g} | {r.distance_term:.4g} | {r.remainder_scale:.4g} | {_size(r.transition)} |")
    return "\n".join(lines) + "\n"


def _fmt(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:+.2f}"


def _size(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{int(value)}"


def plot_bound(terms: pd.DataFrame, path: str | os.PathLike) -> None:
    """One panel per model (log-log against n): the measured gap (points, where positive), the
    distance term sqrt(C sum_i H_i / n) and the remainder scale n^(-3/4) log(1/delta), the AtS
    transition as a dotted line."""
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    from lensllm.report.run import _save, plt

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
    _save(fig, path)
