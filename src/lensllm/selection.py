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
  (`lensllm.ntk`) at t = the optimizer steps of the model's fine-tune at the budget, held fixed:
  B, beta and E are fitted (the paper's phase-fitting case).
- ``LensLLM-NTK-fitted``: the same, with t fitted as one bounded scalar per model, t in
  [0, t_budget * target / budget] (the steps a fine-tune at the target would take). F(t) is
  non-increasing in t, so fitting t is fitting F within [F(t_max), F(0)]; the fitted t is logged.
  Both NTK selectors are charged the NTK's FLOPs of every model on top of their fine-tunes.
- ``Adaptive`` (`lensllm.adaptive`): AtS's least compute spent in two rounds, every model on the
  sizes up to b / 2 first, then the sizes up to 2 b that reduce the forecast variance most per FLOP
  (weighted by P(best)); it needs the FLOPs of each fine-tune (`ModelTerms.flops`).
- ``NLPMetrics``: the mean power-law exponent alpha of the pre-trained weights' spectra
  (`lensllm.spectra`; or its weighted variant, `nlpmetrics_metric`); lower is better. It needs no
  fine-tune, only the spectra, whose FLOPs it is charged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from lensllm.fitting import FitResult, fit_curves
from lensllm.laws import LENSLLM, RECTIFIED, VANILLA, Law
from lensllm.losstable import LossTable
from lensllm.ntk import NtkTerm
from lensllm.spectra import WeightMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelectionSettings:
    """Knobs of the selectors: AtS's k and delta, the fitting seed and multi-start sizes."""

    ats_k: int = 3
    ats_delta: float = 5.0
    seed: int = 0
    n_grid_starts: int = 2
    n_random_starts: int = 1
    lensllm_power_weight: float = 4.0
    nlpmetrics_metric: str = "alpha"
    adaptive_first_round: int = 2
    adaptive_reach: int = 2
    adaptive_contention: float = 0.0
    adaptive_prior: bool = False

    def adaptive(self):
        """The `Adaptive` selector's own settings."""
        from lensllm.adaptive import AdaptiveSettings

        return AdaptiveSettings(self.adaptive_first_round, self.adaptive_reach, self.adaptive_contention, self.adaptive_prior)

    def __post_init__(self) -> None:
        if self.nlpmetrics_metric not in ("alpha", "alpha_weighted"):
            raise ValueError(f"selection setting nlpmetrics_metric must be 'alpha' or 'alpha_weighted', got {self.nlpmetrics_metric!r}")


@dataclass(frozen=True)
class ModelTerms:
    """What the selectors may know about each model beyond its loss curve (our grid only).

    `ntk[model]`: the NTK term on this benchmark; `steps[(model, size)]`: the optimizer steps of
    that fine-tune; `weights[model]`: the weight-spectrum metrics; `flops[(model, size)]`: the FLOPs
    of that fine-tune (any source of curves; `Adaptive` spends by them); `library`: other benchmarks'
    complete loss tables, Adaptive's prior (never the benchmark being evaluated).
    """

    ntk: Mapping[str, NtkTerm] = field(default_factory=dict)
    steps: Mapping[tuple[str, int], int] = field(default_factory=dict)
    weights: Mapping[str, WeightMetrics] = field(default_factory=dict)
    flops: Mapping[tuple[str, int], float] = field(default_factory=dict)
    library: tuple[LossTable, ...] = ()

    def require(self, method: str, what: str, models: Sequence[str]) -> None:
        """Stop with a message naming `method` and the models when `what` is missing for any."""
        have = {"ntk": self.ntk, "weights": self.weights}[what]
        missing = [m for m in models if m not in have]
        if missing:
            source = "the NTK terms (rule compute_ntk)" if what == "ntk" else "the weight spectra (rule measure_weight_spectra)"
            raise ValueError(f"{method} needs {source} of every model, missing for {missing}; it runs on "
                             "our fine-tuning grid only (published curves come without model weights)")


@dataclass(frozen=True)
class Selection:
    """One method's verdict at one budget: a score per model and the fine-tunes it cost.

    Fitted methods also give each model's predicted target loss (`predictions`) and the natural
    parameters of its fit (`fitted`), aligned with `models`; models whose fit failed are `excluded`.
    """

    method: str
    budget: int
    target: int
    models: tuple[str, ...]
    scores: tuple[float, ...]
    higher_is_better: bool
    finetunes: tuple[tuple[str, int], ...]
    predictions: tuple[float, ...] | None = None
    excluded: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    extra_flops: float = 0.0
    fitted: tuple[dict[str, float], ...] | None = None

    def selected(self) -> str:
        """The model the method would fine-tune."""
        scores = np.asarray(self.scores)
        return self.models[int(np.argmax(scores) if self.higher_is_better else np.argmin(scores))]


@dataclass(frozen=True)
class AtsFit:
    """AtS's final line log L = intercept + slope * log D, and the sizes it looked at."""

    slope: float
    intercept: float
    accepted: tuple[int, ...]
    tested: tuple[int, ...]

    def predict(self, sizes) -> np.ndarray:
        """exp(intercept) * D^slope."""
        return np.exp(self.intercept + self.slope * np.log(np.asarray(sizes, dtype=float)))

    @property
    def transition(self) -> int:
        """The smallest size accepted into the power phase."""
        return self.accepted[0]


Selector = Callable[[LossTable, Sequence[int], int, SelectionSettings, ModelTerms], list[Selection]]
SELECTORS: dict[str, Selector] = {}
# The selectors that need the models themselves (NTK terms, weight spectra), not only their loss
# curves: they run on our fine-tuning grid, not on published curves.
MODEL_TERM_SELECTORS = ("LensLLM-NTK-fixed", "LensLLM-NTK-fitted", "NLPMetrics")


def curve_selectors() -> list[str]:
    """The registered selectors that need nothing but a loss table (any source of curves)."""
    return [name for name in SELECTORS if name not in MODEL_TERM_SELECTORS]


def selector(name: str) -> Callable[[Selector], Selector]:
    """Register a selector under `name`."""

    def register(fn: Selector) -> Selector:
        SELECTORS[name] = fn
        return fn

    return register


def select(method: str, table: LossTable, budget: int, target: int, settings: SelectionSettings | None = None,
           terms: ModelTerms | None = None) -> Selection:
    """Run selector `method` at one budget."""
    return run_selector(method, table, [budget], target, settings, terms)[0]


def run_selector(
    method: str,
    table: LossTable,
    budgets: Sequence[int],
    target: int,
    settings: SelectionSettings | None = None,
    terms: ModelTerms | None = None,
) -> list[Selection]:
    """Run selector `method` at every budget; the budgets must be training sizes of the table."""
    if method not in SELECTORS:
        raise KeyError(f"unknown selection method '{method}'; known: {', '.join(SELECTORS)}")
    for budget in budgets:
        if budget not in table.sizes or budget <= 0:
            raise ValueError(
                f"{table.benchmark}: budget {budget} is not a training size of the loss table ({list(table.sizes)})"
            )
        if len(table.train_sizes(budget)) < 2:
            raise ValueError(f"{table.benchmark}: budget {budget} leaves fewer than two training sizes")
    return SELECTORS[method](table, list(budgets), target, settings or SelectionSettings(), terms or ModelTerms())


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
# would otherwise be compared with each other and decide the walk by the CPU's rounding.
ATS_NOISE = 1e-9


def ats_fit(sizes: Sequence[int], losses: Sequence[float], k: int = 3, delta: float = 5.0) -> AtsFit:
    """Lin et al.'s Accept-then-Stop walk over one curve's training sizes (ascending).

    With x = log D and y = log L, a line is fitted by least squares to the k largest sizes; the next
    smaller size is accepted when |y - line| <= delta * max(std(in-sample residuals), noise), with
    noise = ATS_NOISE * max(1, max |y|), and the line is refitted. The noise floor gives a defined
    answer when the accepted points are collinear to float precision (an exact power law, a constant
    curve): a point is then accepted iff it lies on the line to within delta * noise. The smallest
    size is never accepted.
    """
    x, y = np.log(np.asarray(sizes, dtype=float)), np.log(np.asarray(losses, dtype=float))
    if len(x) < 2:
        raise ValueError(f"AtS needs at least two training sizes, got {list(sizes)}")
    noise = ATS_NOISE * max(1.0, float(np.max(np.abs(y))))
    first = max(len(x) - k, 0)
    tested = list(sizes[first:])
    while True:
        slope, intercept = np.polyfit(x[first:], y[first:], 1)
        if first <= 1:  # the smallest size is never accepted
            break
        candidate = first - 1
        tested.insert(0, sizes[candidate])
        spread = max(float(np.std(y[first:] - (intercept + slope * x[first:]))), noise)
        deviation = abs(y[candidate] - (intercept + slope * x[candidate]))
        if deviation > delta * spread:
            break
        first = candidate
    return AtsFit(float(slope), float(intercept), tuple(int(s) for s in sizes[first:]), tuple(int(s) for s in tested))


@selector("AtS")
def accept_then_stop(table, budgets, target, settings, terms):
    selections = []
    for budget in budgets:
        sizes = table.train_sizes(budget)
        fits = [ats_fit(sizes, table.curve(m, sizes), settings.ats_k, settings.ats_delta) for m in table.models]
        predictions = tuple(float(f.predict(target)) for f in fits)
        finetunes = tuple((m, s) for m, f in zip(table.models, fits) for s in f.tested)
        selections.append(Selection("AtS", budget, target, table.models, predictions, False, finetunes, predictions))
    return selections


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


@selector("Adaptive")
def adaptive(table, budgets, target, settings, terms):
    """Two rounds within AtS's least compute (lensllm.adaptive), on the cells of the table it buys."""
    from lensllm import adaptive as rounds

    if not terms.flops:
        raise ValueError("Adaptive needs the FLOPs of every fine-tune (rule finetune_flops) to spend its compute")
    knobs = settings.adaptive()
    if knobs.prior and any(t.benchmark == table.benchmark for t in terms.library):
        raise ValueError(f"{table.benchmark}: Adaptive's prior may not learn from the benchmark it evaluates")
    prior = rounds.LibraryPrior.learn(terms.library, settings.ats_k, settings.ats_delta) if knobs.prior else None
    selections = []
    for budget in budgets:
        shop = rounds.Shop(table, knobs.reach * budget, target)
        for model in table.models:
            for size in rounds.first_round_sizes(table.sizes, budget, knobs):
                shop.buy(model, size)
        round0 = {(m, s): (shop.owned[m][s], terms.flops[(m, s)]) for m, s in shop.finetunes}
        plan = rounds.plan_rounds(round0, table.sizes, [budget], target, settings.ats_k, settings.ats_delta, knobs)[0]
        for model, size in plan.buys:
            shop.buy(model, size)
        selections.append(rounds.selection_of(shop.owned, table.models, budget, target, settings.ats_k,
                                              settings.ats_delta, knobs, prior))
    return selections
