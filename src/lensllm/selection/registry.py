"""The selector registry: the records every selector shares and `run_selector`, the one way to call one.

A selector is registered by name (`@selector(name)`) and called as
``SELECTORS[name](table, budgets, target, settings, terms)``; it returns one `Selection` per budget.
`METHODS` is the one list of selector names (the config schema, the rules and the reports read it);
the selectors themselves live in `ats`, `selectors` and `adaptive`, which `lensllm.selection`
imports, so that importing the package registers them all. See `lensllm.selection.selectors` for
what each selector computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from lensllm.curves.losstable import LossTable
from lensllm.curves.terms import NtkTerm, WeightMetrics

# Every selector, in the order of the tables and figures.
METHODS = ("ZeroShot", "SubTuning", "ModelSize", "AtS", "RectifiedFit", "VanillaFit", "LensLLM",
           "LensLLM-NTK-fixed", "LensLLM-NTK-fitted", "NLPMetrics", "Adaptive", "Race")
# The selectors that need the models themselves (NTK terms, weight spectra), not only their loss
# curves: they run on our fine-tuning grid, not on published curves.
MODEL_TERM_SELECTORS = ("LensLLM-NTK-fixed", "LensLLM-NTK-fitted", "NLPMetrics")


@dataclass(frozen=True)
class AdaptiveSettings:
    """The knobs of `Adaptive` (config: selection.adaptive_*)."""

    first_round: int = 2
    reach: int = 2
    contention: float = 0.0
    prior: bool = False
    backtests: int = 3
    curvature_window: float = 0.5

    def __post_init__(self) -> None:
        if self.first_round < 1 or self.reach < 1:
            raise ValueError(f"adaptive first_round and reach must be >= 1, got {self.first_round}, {self.reach}")
        if self.contention < 0:
            raise ValueError(f"adaptive contention must be >= 0, got {self.contention}")


@dataclass(frozen=True)
class RaceSettings:
    """The knobs of `Race` (lensllm.selection.race; config: selection.race_*; select mode: select.*)."""

    first: int = 8
    contenders: int = 3
    margin: float = 0.2
    reach: int | None = None
    max_rounds: int = 8
    settle_p_best: float = 0.0
    shared: float = 0.5
    backtests: int = 3
    curvature_window: float = 0.5

    def limit(self, budget: int, target: int) -> int:
        """The largest size a contender may be fine-tuned at: reach x budget, or, with no reach, the
        target (never bought itself)."""
        return target if self.reach is None else self.reach * budget

    def __post_init__(self) -> None:
        if self.first < 1 or (self.reach is not None and self.reach < 1) or self.contenders < 1 or self.max_rounds < 0:
            raise ValueError(f"race first, reach (or None) and contenders must be >= 1 and max_rounds >= 0, got {self}")
        if self.margin < 0 or not 0 <= self.shared < 1 or not 0 <= self.settle_p_best <= 1:
            raise ValueError(f"race margin must be >= 0, shared in [0, 1) and settle_p_best in [0, 1], got {self}")


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
    race_first: int = 8
    race_contenders: int = 3
    race_margin: float = 0.2
    race_reach: int | None = None
    race_shared: float = 0.5

    def adaptive(self) -> AdaptiveSettings:
        """The `Adaptive` selector's own settings."""
        return AdaptiveSettings(self.adaptive_first_round, self.adaptive_reach, self.adaptive_contention, self.adaptive_prior)

    def race(self) -> RaceSettings:
        """The `Race` selector's own settings (no early settling: it spends up to AtS's compute)."""
        return RaceSettings(first=self.race_first, contenders=self.race_contenders, margin=self.race_margin,
                            reach=self.race_reach, shared=self.race_shared)

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


Selector = Callable[[LossTable, Sequence[int], int, SelectionSettings, ModelTerms], list[Selection]]
SELECTORS: dict[str, Selector] = {}


def curve_selectors() -> list[str]:
    """The registered selectors that need nothing but a loss table (any source of curves)."""
    return [name for name in METHODS if name in SELECTORS and name not in MODEL_TERM_SELECTORS]


def selector(name: str) -> Callable[[Selector], Selector]:
    """Register a selector under `name`."""

    if name not in METHODS:
        raise ValueError(f"selector '{name}' is not in METHODS ({', '.join(METHODS)})")

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
        raise KeyError(f"unknown selection method '{method}'; known: {', '.join(METHODS)}")
    for budget in budgets:
        if budget not in table.sizes or budget <= 0:
            raise ValueError(
                f"{table.benchmark}: budget {budget} is not a training size of the loss table ({list(table.sizes)})"
            )
        if len(table.train_sizes(budget)) < 2:
            raise ValueError(f"{table.benchmark}: budget {budget} leaves fewer than two training sizes")
    return SELECTORS[method](table, list(budgets), target, settings or SelectionSettings(), terms or ModelTerms())

