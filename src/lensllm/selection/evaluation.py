"""The per-benchmark analysis the workflow runs on a loss table.

1. `fit_all_laws`: every law fitted to every model's curve on all non-zero sizes (``fits.tsv``).
2. `run_selectors`: every selector at every budget (target / ratio), as JSON-ready records.
3. `score_selections`: PearCorr and RelAcc against the true target losses, with the FLOPs of the
   fine-tunes each method needed (plus its other compute on the models, such as the NTK) and its
   cost reduction against FullTuning (``selection.tsv``); and the RMSE of the predicted target
   losses (``prediction_error.tsv``), model by model in `prediction_errors_by_model`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from typing import Sequence

import pandas as pd

from lensllm.atomic import write_json
from lensllm.curves.collect import read_runs
from lensllm.curves.cost import (EnergyTable, FlopsTable, cost_reduction, full_tuning_flops, read_flops, selection_energy,
                                 selection_flops)
from lensllm.curves.fitting import fit_curves
from lensllm.curves.laws import BOXES_ON_RANGE, LAWS
from lensllm.curves.losstable import LossTable, read_losstable
from lensllm.curves.metrics import pearcorr, relacc, rmse
from lensllm.curves.terms import read_ntk, read_weight_metrics
from lensllm.curves.budgets import budgets_for
from lensllm.selection.ats import ats_fit
from lensllm.selection.registry import ModelTerms, Selection, SelectionSettings, run_selector

SELECTION_COLUMNS = ["benchmark", "method", "ratio", "metric", "value", "value_raw", "flops", "cost_reduction", "energy_joules"]
FIT_COLUMNS = ["benchmark", "model", "law", "status", "rms_log", "n_points", "objective", "B", "D_l", "F", "beta", "E", "alpha", "message"]


def fit_all_laws(table: LossTable, laws: Sequence[str], seed: int = 0) -> pd.DataFrame:
    """Fit each law in `laws` to every model's curve on all non-zero sizes; one row per (model, law).
    The fits describe the measured range: a law with several boxes (`BOXES_ON_RANGE`: the vanilla
    law's E >= 0, or E free) is fitted in each, and per curve the usable fit with the lowest
    objective is kept."""
    sizes = table.train_sizes()
    curves = [table.curve(m, sizes) for m in table.models]
    rows = []
    for name in laws:
        boxes = [fit_curves(law, [sizes] * len(curves), curves, seed=seed) for law in BOXES_ON_RANGE.get(name, (LAWS[name],))]
        fits = [min(options, key=lambda fit: (not fit.ok, fit.objective)) for options in zip(*boxes)]
        for model, fit in zip(table.models, fits):
            rows.append(
                {
                    "benchmark": table.benchmark,
                    "model": model,
                    "law": name,
                    "status": fit.status.value,
                    "rms_log": fit.rms_log,
                    "n_points": fit.n_points,
                    "objective": fit.objective,
                    **fit.params,
                    "message": fit.message,
                }
            )
    return pd.DataFrame(rows, columns=FIT_COLUMNS)


def run_selectors(
    table: LossTable,
    methods: Sequence[str],
    target: int,
    ratios: Sequence[int],
    settings: SelectionSettings,
    terms: ModelTerms | None = None,
) -> list[Selection]:
    """Every method at every budget target / ratio."""
    if target not in table.sizes:
        raise ValueError(f"{table.benchmark}: the target size {target} is not a column of the loss table {list(table.sizes)}")
    budgets = list(budgets_for(target, ratios).values())
    return [s for method in methods for s in run_selector(method, table, budgets, target, settings, terms)]


def read_model_terms(
    ntk_paths: Sequence[str | os.PathLike], weight_paths: Sequence[str | os.PathLike], runs_path: str | os.PathLike
) -> ModelTerms:
    """The model terms of one benchmark: NTK JSONs, weight-metric JSONs, and the runs table's steps."""
    ntk = {term.model: term for term in map(read_ntk, ntk_paths)}
    weights = {metrics.model: metrics for metrics in map(read_weight_metrics, weight_paths)}
    runs = read_runs(runs_path)
    steps = {(m, int(s)): int(n) for m, s, n in zip(runs["model"], runs["size"], runs["steps"])}
    return ModelTerms(ntk, steps, weights)


def terms_of_inputs(inputs) -> ModelTerms:
    """The model terms among a job's named inputs (`ntk`, `weights`, `runs`: our grid; `flops`: the
    fine-tunes' FLOPs, and `library`: other benchmarks' loss tables, for Adaptive), or none."""
    terms = read_model_terms(inputs.ntk, inputs.weights, inputs.runs) if hasattr(inputs, "runs") else ModelTerms()
    if hasattr(inputs, "flops"):
        terms = replace(terms, flops=read_flops(inputs.flops))
    if hasattr(inputs, "library"):
        terms = replace(terms, library=tuple(read_losstable(path) for path in inputs.library))
    return terms


def write_selections(selections: Sequence[Selection], path: str | os.PathLike) -> None:
    """Write selections as a JSON list, atomically."""
    write_json([asdict(s) for s in selections], path)


def read_selections(path: str | os.PathLike) -> list[Selection]:
    """Read selections written by `write_selections`."""
    records = json.loads(open(path).read())
    selections = []
    for r in records:
        r["models"], r["scores"] = tuple(r["models"]), tuple(r["scores"])
        r["finetunes"] = tuple((m, int(s)) for m, s in r["finetunes"])
        r["predictions"] = None if r["predictions"] is None else tuple(r["predictions"])
        r["excluded"] = tuple((m, why) for m, why in r["excluded"])
        r["fitted"] = None if r.get("fitted") is None else tuple(r["fitted"])
        selections.append(Selection(**r))
    return selections


def score_selections(
    selections: Sequence[Selection], table: LossTable, flops_of: FlopsTable, energy_of: EnergyTable | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `selection.tsv` rows (PearCorr, RelAcc, FLOPs, energy) and the `prediction_error.tsv` rows.

    `flops_of[(model, size)]` is the cost of each fine-tune (see `lensllm.curves.cost`); `energy_of` its
    measured joules (our grid): a selection's energy is that of its fine-tunes, empty unless every
    one was measured (never estimated; the NTK's and spectra's energy is not included).
    """
    rows, errors = [], []
    for s in selections:
        true = dict(zip(table.models, table.column(s.target)))
        truth = [true[m] for m in s.models]
        flops = selection_flops(s.finetunes, flops_of) + s.extra_flops
        reduction = cost_reduction(flops, full_tuning_flops(table.models, s.target, flops_of))
        energy = selection_energy(s.finetunes, energy_of) if energy_of else None
        ratio = s.target // s.budget
        for metric, value in (
            ("PearCorr", pearcorr(s.scores, truth)),
            ("RelAcc", relacc(true[s.selected()], table.column(s.target))),
        ):
            rows.append([table.benchmark, s.method, ratio, metric, round(value, 1), value, flops, reduction, energy])
        if s.predictions is not None:
            errors.append([table.benchmark, s.method, ratio, rmse(s.predictions, truth), len(s.models), len(s.excluded)])
    selection = pd.DataFrame(rows, columns=SELECTION_COLUMNS)
    prediction_error = pd.DataFrame(errors, columns=["benchmark", "method", "ratio", "rmse", "n_models", "n_excluded"])
    return selection, prediction_error


def prediction_errors_by_model(selections: Sequence[Selection], table: LossTable) -> pd.DataFrame:
    """Each predicting method's predicted and true target loss per model and ratio, and the error."""
    true = dict(zip(table.models, table.column(selections[0].target))) if selections else {}
    rows = [
        [table.benchmark, s.method, s.target // s.budget, model, predicted, true[model], predicted - true[model]]
        for s in selections
        if s.predictions is not None
        for model, predicted in zip(s.models, s.predictions)
    ]
    return pd.DataFrame(rows, columns=["benchmark", "method", "ratio", "model", "predicted", "true", "error"])


def ats_transitions(table: LossTable, k: int, delta: float) -> dict[str, int]:
    """The AtS phase transition of each model's whole curve: the smallest size in the power phase."""
    sizes = table.train_sizes()
    return {m: ats_fit(sizes, table.curve(m, sizes), k, delta).transition for m in table.models}
