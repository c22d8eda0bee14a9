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
  `finetune.bound_batches` training batches (`lensllm.training.hessian.hessian_distance`).

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
the distance term stays above the remainder scale. Their table and figure: `lensllm.report.bound`.
"""

from __future__ import annotations

import math
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
