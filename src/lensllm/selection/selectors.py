"""Model selectors: from a loss table and a data budget, score every candidate model.

A selector is registered by name and called as
``SELECTORS[name](table, budgets, target, settings, terms)``; it returns one `Selection` per budget.
`terms` (`ModelTerms`) holds what a selector may know about each model beyond its loss curve: the
NTK term, the optimizer steps of each fine-tune, the weight-spectrum metrics; the published curves
have none of these. Taking every budget in one call lets the fitted selectors fit
all their curves in one batch; `select` is the one-budget form. A `Selection` holds a score per model
(with its direction), the predicted target loss where the method predicts one, and the list of
(model, size) fine-tunes the method needed, plus the FLOPs of any other computation it needed on the
models (`extra_flops`: NTK, weight spectra), so that its cost is charged honestly. Size 0 is the
zero-shot evaluation and costs no fine-tuning.

The selectors (the training sizes of a budget are the table's non-zero sizes up to the budget):

- ``ZeroShot``: the zero-shot loss (column 0); lower is better.
- ``SubTuning``: the loss after fine-tuning on the budget itself; lower is better.
- ``ModelSize``: log(parameter count); larger is better.
- ``AtS`` (Lin et al., 2024, "Accept then Stop"): a line in log-log space fitted by ordinary least
  squares on the k largest training sizes; then the next smaller size is tested: if its absolute
  residual divided by the standard deviation (ddof 0) of the in-sample residuals exceeds delta,
  stop; else accept it and refit. A standard deviation at float-noise level (collinear points)
  is raised to a noise floor (`ATS_NOISE`), so exact lines have one answer on every CPU. The smallest size is never accepted (as in the published numbers).
  The final line predicts the target loss. It needs the fine-tunes from the budget down to the
  last size tested.
- ``RectifiedFit``: the rectified law on zero-shot (at D = 0) plus every training size.
- ``VanillaFit``: the vanilla power law on every training size.
- ``LensLLM``: the LensLLM law L = B / (F + D^beta) + E, with F fitted per model. Its points: the
  zero-shot anchor at D = 0 plus every training size, with the points of the power phase (the sizes
  AtS accepts) weighted up by `lensllm_power_weight`, so the extrapolation follows the power phase
  while F and the anchor explain the pre-power bend. It needs the same fine-tunes as RectifiedFit.
- ``LensLLM-NTK-fixed``: the same law and points, with F = F(Theta, t) measured from the model
  (`lensllm.probes.ntk`) at t = the optimizer steps of the model's fine-tune at the budget, held fixed:
  B, beta and E are fitted (the paper's phase-fitting case).
- ``LensLLM-NTK-fitted``: the same, with t fitted as one bounded scalar per model, t in
  [0, t_budget * target / budget] (the steps a fine-tune at the target would take). F(t) is
  non-increasing in t, so fitting t is fitting F within [F(t_max), F(0)]; the fitted t is logged.
  Both NTK selectors are charged the NTK's FLOPs of every model on top of their fine-tunes.
- ``Adaptive`` (`lensllm.selection.adaptive`): AtS's least compute spent in two rounds, every model on the
  sizes up to b / 2 first, then the sizes up to 2 b that reduce the forecast variance most per FLOP
  (weighted by P(best)); it needs the FLOPs of each fine-tune (`ModelTerms.flops`).
- ``NLPMetrics``: the mean power-law exponent alpha of the pre-trained weights' spectra
  (`lensllm.probes.spectra`; or its weighted variant, `nlpmetrics_metric`); lower is better. It needs no
  fine-tune, only the spectra, whose FLOPs it is charged.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

from lensllm.curves.fitting import FitResult, fit_curves
from lensllm.curves.laws import LENSLLM, RECTIFIED, VANILLA, Law
from lensllm.curves.losstable import LossTable
from lensllm.selection.ats import ats_fit
from lensllm.selection.registry import Selection, SelectionSettings, selector

log = logging.getLogger(__name__)


@selector("ZeroShot")
def zero_shot(table, budgets, target, settings, terms):
    scores = tuple(table.column(0))
    finetunes = tuple((m, 0) for m in table.models)
    return [Selection("ZeroShot", b, target, table.models, scores, False, finetunes) for b in budgets]


@selector("SubTuning")
def sub_tuning(table, budgets, target, settings, terms):
    return [
        Selection("SubTuning", b, target, table.models, tuple(table.column(b)), False, tuple((m, b) for m in table.models))
        for b in budgets
    ]


@selector("ModelSize")
def model_size(table, budgets, target, settings, terms):
    scores = tuple(np.log(table.params))
    return [Selection("ModelSize", b, target, table.models, scores, True, ()) for b in budgets]


# Residuals of log-loss below this (relative to the largest |log L| of the curve) are float noise:
# a least-squares line through exactly collinear points leaves residuals of about 1e-16, which

def _fitted_selections(
    method: str,
    law: Law,
    table: LossTable,
    budgets: Sequence[int],
    target: int,
    settings: SelectionSettings,
    points: Callable[[str, int], tuple[tuple[int, ...], np.ndarray]],
    bounds: Callable[[str, int], tuple[np.ndarray, np.ndarray]] | None = None,
    extra_flops: float = 0.0,
) -> list[Selection]:
    """Fit `law` to `points(model, budget)` = (sizes, weights) for every model and budget at once,
    inside `bounds(model, budget)` if given (see `fit_curves`)."""
    jobs = [(b, m, *points(m, b)) for b in budgets for m in table.models]
    fits = fit_curves(
        law,
        [sizes for _, _, sizes, _ in jobs],
        [table.curve(m, sizes) for _, m, sizes, _ in jobs],
        weights=[w for _, _, _, w in jobs],
        seed=settings.seed,
        n_grid_starts=settings.n_grid_starts,
        n_random_starts=settings.n_random_starts,
        bounds=None if bounds is None else [bounds(m, b) for b, m, _, _ in jobs],
    )
    by_budget: dict[int, list[tuple[str, tuple[int, ...], FitResult]]] = {b: [] for b in budgets}
    for (b, m, sizes, _), fit in zip(jobs, fits):
        by_budget[b].append((m, sizes, fit))
    selections = []
    for budget in budgets:
        models, predictions, excluded, finetunes, fitted = [], [], [], [], []
        for model, sizes, fit in by_budget[budget]:
            finetunes.extend((model, s) for s in sizes)
            if not fit.ok:
                log.warning("%s: %s at budget %d: %s left out (fit %s: %s)", table.benchmark, method, budget, model, fit.status.value, fit.message)
                excluded.append((model, f"fit {fit.status.value}: {fit.message}"))
                continue
            models.append(model)
            predictions.append(float(fit.predict([target])[0]))
            fitted.append(dict(fit.params))
        selections.append(
            Selection(method, budget, target, tuple(models), tuple(predictions), False, tuple(finetunes),
                      tuple(predictions), tuple(excluded), extra_flops, tuple(fitted))
        )
    return selections


@selector("RectifiedFit")
def rectified_fit(table, budgets, target, settings, terms):
    def points(model, budget):
        sizes = (0, *table.train_sizes(budget))
        return sizes, np.ones(len(sizes))

    return _fitted_selections("RectifiedFit", RECTIFIED, table, budgets, target, settings, points)


@selector("VanillaFit")
def vanilla_fit(table, budgets, target, settings, terms):
    def points(model, budget):
        sizes = table.train_sizes(budget)
        return sizes, np.ones(len(sizes))

    return _fitted_selections("VanillaFit", VANILLA, table, budgets, target, settings, points)


def _lensllm_points(table: LossTable, settings: SelectionSettings):
    """The zero-shot anchor plus every training size, the power phase (AtS) weighted up."""

    def points(model, budget):
        train = table.train_sizes(budget)
        power = set(ats_fit(train, table.curve(model, train), settings.ats_k, settings.ats_delta).accepted)
        weights = [1.0] + [settings.lensllm_power_weight if s in power else 1.0 for s in train]
        return (0, *train), np.array(weights)

    return points


@selector("LensLLM")
def lensllm(table, budgets, target, settings, terms):
    return _fitted_selections("LensLLM", LENSLLM, table, budgets, target, settings, _lensllm_points(table, settings))


def _ntk_selections(method: str, table, budgets, target, settings, terms, t_range) -> list[Selection]:
    """LensLLM with F(t) from the NTK, t in `t_range(t_budget, budget)`, as bounds on log F."""
    terms.require(method, "ntk", table.models)
    missing = [(m, b) for m in table.models for b in budgets if (m, b) not in terms.steps]
    if missing:
        raise ValueError(f"{method} needs the optimizer steps of each fine-tune, missing for (model, size) {missing[:5]}")
    index = LENSLLM.param_names.index("F")

    def bounds(model, budget):
        t_low, t_high = t_range(terms.steps[(model, budget)], budget)
        term = terms.ntk[model]
        lower, upper = np.full(4, -np.inf), np.full(4, np.inf)
        lower[index], upper[index] = (np.log(max(float(term.f(t)), 1e-300)) for t in (t_high, t_low))
        return lower, upper

    selections = _fitted_selections(method, LENSLLM, table, budgets, target, settings, _lensllm_points(table, settings),
                                    bounds, extra_flops=sum(terms.ntk[m].flops for m in table.models))
    for selection in selections:
        for model, params in zip(selection.models, selection.fitted):
            t_low, t_high = t_range(terms.steps[(model, selection.budget)], selection.budget)
            t = terms.ntk[model].t_for(params["F"], t_high) if t_high > t_low else t_low
            log.info("%s: %s at budget %d: %s F = %.4g at t = %.4g steps (range %g..%g), beta = %.3g, E = %.3g",
                     table.benchmark, method, selection.budget, model, params["F"], t, t_low, t_high, params["beta"], params["E"])
    return selections


@selector("LensLLM-NTK-fixed")
def lensllm_ntk_fixed(table, budgets, target, settings, terms):
    return _ntk_selections("LensLLM-NTK-fixed", table, budgets, target, settings, terms, lambda steps, budget: (steps, steps))


@selector("LensLLM-NTK-fitted")
def lensllm_ntk_fitted(table, budgets, target, settings, terms):
    return _ntk_selections("LensLLM-NTK-fitted", table, budgets, target, settings, terms,
                           lambda steps, budget: (0.0, steps * target / budget))


@selector("NLPMetrics")
def nlp_metrics(table, budgets, target, settings, terms):
    terms.require("NLPMetrics", "weights", table.models)
    scores = tuple(getattr(terms.weights[m], settings.nlpmetrics_metric) for m in table.models)
    cost = sum(terms.weights[m].flops for m in table.models)
    return [Selection("NLPMetrics", b, target, table.models, scores, False, (), extra_flops=cost) for b in budgets]
