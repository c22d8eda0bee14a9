"""Adaptive: a selector that spends AtS's compute where it informs the forecast most.

AtS (Lin et al., 2024) fine-tunes every candidate on the same sizes up to the budget b, whatever
the candidate costs. `Adaptive` gets the same or less compute and spends it in two rounds:

- **Its compute.** C(b) = sum over models m of the FLOPs of the k largest training sizes <= b and
  the next smaller one unless it is the smallest (k = AtS's `ats_k`): the least AtS itself can
  spend (its walk always tests those). Known before any loss is seen, so Adaptive's FLOPs are
  <= AtS's in every cell.
- **Round 0.** Every model is fine-tuned on every training size <= b / `first_round`.
- **Forecast.** Each model's AtS line, fitted on the sizes it owns, gives log mu_m at the target N;
  horizon H_m = log(N / cap_m), cap_m = its largest owned size. The models that share a cap are
  backtested inside what they own (`uncertainty`'s formula: the line from the sizes up to each of the
  `backtests` largest owned sizes below the cap predicts the loss at the cap; z = log error per unit
  of log-horizon): log mu_m -= bias H_m and
  sigma_m^2 = (s H_m)^2 + (kappa_m H_m^2 / 2)^2, s the spread of z, kappa_m the local curvature.
- **Round 1.** The rest of C(b) buys larger sizes, one size at a time, on the ladder of training
  sizes above b / `first_round` up to `reach` x b (never the target): the step of the largest value
  per FLOP is bought while it fits,
      value_m = (1 / n + contention x P(best)_m) x (sigma_m(H_now)^2 - sigma_m(H_next)^2) / FLOPs,
  i.e. the reduction of the model's forecast variance (all models count for PearCorr, 1/n each;
  the likely winners count more for the pick), from the round-0 forecasts. A cheap model therefore
  reaches past b while an expensive one stops below it: the same FLOPs, shorter extrapolations.
- **The pick.** The forecasts from everything bought; the lowest forecast loss is selected.
- **Round 1's FLOPs** are planned before its fine-tunes run: FLOPs(m, s) = FLOPs(m, s0) x s / s0
  from the largest size s0 of m already measured (exact for the published curves' cost model; on
  the grid the job charges what it measured).
- **The prior** (optional, `prior`): `LibraryPrior`, learned on other benchmarks' complete curves
  (leave one benchmark out), moves each final forecast within its cap group; round 1 is planned
  from round 0's own forecasts.

Adaptive reads a cell of the table only when it buys it (`Shop`), and never a size above
`reach` x b: on our grid the rounds are real (a Snakemake checkpoint plans round 1 from round 0's
fine-tunes, rules/adaptive.smk); on published curves it buys sizes of the table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from lensllm.atomic import write_json
from lensllm.curves.cost import FlopsTable
from lensllm.selection.ats import ats_fit
from lensllm.selection.registry import AdaptiveSettings, Selection, selector
from lensllm.selection.uncertainty import Forecast, local_curvature


@dataclass(frozen=True)
class Plan:
    """Round 1 of one budget: the sizes bought for each model, and the FLOPs of both rounds."""

    budget: int
    compute: float
    spent: float
    buys: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ModelForecast:
    """One model's forecast at the target from the sizes it owns (see the module docstring)."""

    cap: int
    log_mu: float
    spread: float
    kappa: float
    horizon: float

    def sigma(self, cap: int | None = None, target: int | None = None) -> float:
        """sigma at the model's own cap, or at another cap with the same spread and curvature."""
        h = self.horizon if cap is None else math.log(target / cap)
        return max(math.hypot(self.spread * h, self.kappa * h * h / 2), 1e-9)


def compute_of(models: Sequence[str], sizes: Sequence[int], budget: int, flops: FlopsTable, k: int) -> float:
    """C(b): the FLOPs of the sizes AtS tests on every curve, for every model: the k largest training
    sizes <= b, and the next smaller one unless it is the smallest (which AtS never tests)."""
    train = [s for s in sorted(sizes) if 0 < s <= budget]
    tested = train[-(k + 1):] if len(train) >= k + 2 else train[-k:]
    return float(sum(flops[(m, s)] for m in models for s in tested))


def first_round_sizes(sizes: Sequence[int], budget: int, settings: AdaptiveSettings) -> tuple[int, ...]:
    """The training sizes of round 0: every one <= b / first_round (at least the two smallest)."""
    train = sorted(s for s in sizes if s > 0)
    chosen = [s for s in train if s * settings.first_round <= budget]
    return tuple(chosen if len(chosen) >= 2 else train[:2])


def ladder(sizes: Sequence[int], budget: int, target: int, settings: AdaptiveSettings) -> tuple[int, ...]:
    """The sizes round 1 may buy: above round 0's, up to reach x b, below the target."""
    first = first_round_sizes(sizes, budget, settings)
    return tuple(s for s in sorted(sizes) if first[-1] < s <= settings.reach * budget and s < target)


@dataclass(frozen=True)
class LibraryPrior:
    """How the differences between AtS's extrapolations held up on past curves (a library of other
    benchmarks' complete loss tables; never the benchmark being evaluated).

    For every library table, cap c and horizon ratio rho with c and rho c both sizes of it, each
    model's AtS line on the sizes <= c predicts log L(rho c); with the predicted log drop
    d_m = slope_m log rho and the error e_m = log L(rho c) - log prediction, both centred over the
    models of that (table, c), w(rho) = sum d e / sum d^2 pooled over tables and caps (the ratio
    itself, or the largest the library has). A forecast's log mu_m then moves by
    w (d_m - mean d) within its cap group: w < 0 shrinks the models' predicted drops toward their
    mean (past extrapolations overshot their differences), w > 0 stretches them.
    """

    pairs: tuple[tuple[float, tuple[float, ...], tuple[float, ...]], ...]

    @classmethod
    def learn(cls, tables, k: int, delta: float) -> "LibraryPrior":
        pairs = []
        for table in tables:
            train = table.train_sizes()
            for i, cap in enumerate(train):
                if i < 1:
                    continue
                fits = [ats_fit(train[: i + 1], table.curve(m, train[: i + 1]), k, delta) for m in table.models]
                for later in train[i + 1:]:
                    rho = later / cap
                    drop = np.array([f.slope * math.log(rho) for f in fits])
                    error = np.log(table.column(later)) - np.array([math.log(float(f.predict(later))) for f in fits])
                    pairs.append((rho, tuple(drop - drop.mean()), tuple(error - error.mean())))
        return cls(tuple(pairs))

    def weight(self, rho: float) -> float:
        """w(rho): pooled over the library's pairs of that ratio (or of its largest ratio)."""
        if not self.pairs:
            return 0.0
        known = sorted({p[0] for p in self.pairs})
        use = min(known, key=lambda r: (abs(math.log(r / rho)), -r)) if rho <= known[-1] else known[-1]
        d = np.concatenate([p[1] for p in self.pairs if p[0] == use])
        e = np.concatenate([p[2] for p in self.pairs if p[0] == use])
        return float(d @ e / (d @ d)) if d @ d > 0 else 0.0


def forecasts(owned: Mapping[str, Mapping[int, float]], target: int, k: int, delta: float,
              settings: AdaptiveSettings, prior: LibraryPrior | None = None) -> dict[str, ModelForecast]:
    """Each model's forecast from the (size -> loss) it owns, backtested within its cap group
    (and moved by the library prior, when one is given and settings.prior is on)."""
    caps = {m: max(points) for m, points in owned.items()}
    out: dict[str, ModelForecast] = {}
    for cap in sorted(set(caps.values())):
        group = [m for m in owned if caps[m] == cap]
        z = []
        for m in group:
            sizes = sorted(owned[m])
            for cut in [s for s in sizes if s < cap][-settings.backtests:]:
                past = [s for s in sizes if s <= cut]
                if len(past) < 2:
                    continue
                fit = ats_fit(past, [owned[m][s] for s in past], k, delta)
                z.append((math.log(float(fit.predict(cap))) - math.log(owned[m][cap])) / math.log(cap / cut))
        z = np.asarray(z, dtype=float)
        bias = float(z.mean()) if len(z) >= 2 else 0.0
        spread = float(np.sqrt(np.mean((z - bias) ** 2))) if len(z) >= 2 else 0.0
        horizon = math.log(target / cap)
        fits = {m: ats_fit(sorted(owned[m]), [owned[m][s] for s in sorted(owned[m])], k, delta) for m in group}
        drops = {m: fits[m].slope * horizon for m in group}
        mean_drop = float(np.mean(list(drops.values())))
        w = prior.weight(target / cap) if prior is not None and settings.prior else 0.0
        for m in group:
            sizes = sorted(owned[m])
            losses = [owned[m][s] for s in sizes]
            log_mu = math.log(float(fits[m].predict(target))) - bias * horizon + w * (drops[m] - mean_drop)
            out[m] = ModelForecast(cap, log_mu, spread, local_curvature(sizes, losses, settings.curvature_window), horizon)
    return out


def p_best(models: Sequence[str], found: Mapping[str, ModelForecast]) -> dict[str, float]:
    """P(best) of each model from its forecast (`Forecast.p_best`)."""
    as_forecast = Forecast("Adaptive", 0, 0, tuple(models), tuple(math.exp(found[m].log_mu) for m in models),
                           tuple(found[m].sigma() for m in models))
    return dict(zip(models, as_forecast.p_best()))


def plan_round(owned: Mapping[str, Mapping[int, float]], sizes: Sequence[int], budget: int, target: int,
               flops: FlopsTable, k: int, delta: float, settings: AdaptiveSettings) -> Plan:
    """Round 1 from round 0's losses: the greedy purchases of the module docstring."""
    models = sorted(owned)
    compute = compute_of(models, sizes, budget, flops, k)
    spent = float(sum(flops[(m, s)] for m in models for s in owned[m]))
    steps = ladder(sizes, budget, target, settings)
    found = forecasts(owned, target, k, delta, settings)
    chance = p_best(models, found) if settings.contention > 0 else {m: 0.0 for m in models}
    weight = {m: 1.0 / len(models) + settings.contention * chance[m] for m in models}
    cap = {m: found[m].cap for m in models}
    buys = []
    while True:
        best = None
        for m in models:
            higher = [s for s in steps if s > cap[m]]
            if not higher or spent + flops[(m, higher[0])] > compute:
                continue
            gain = found[m].sigma(cap[m], target) ** 2 - found[m].sigma(higher[0], target) ** 2
            value = weight[m] * gain / flops[(m, higher[0])]
            if best is None or value > best[0]:
                best = (value, m, higher[0])
        if best is None:
            break
        _, m, size = best
        cap[m] = size
        spent += flops[(m, size)]
        buys.append((m, size))
    return Plan(budget, compute, spent, tuple(buys))


def estimated_flops(measured: Mapping[tuple[str, int], float], sizes: Sequence[int]) -> dict[tuple[str, int], float]:
    """FLOPs of every (model, size) before it runs, from the fine-tunes already measured: a
    fine-tune's FLOPs grow with its examples, so FLOPs(m, s) = FLOPs(m, s0) x s / s0, s0 = the
    largest size of m measured (its own measurement where there is one)."""
    out = {}
    for model in {m for m, _ in measured}:
        known = {s: f for (m, s), f in measured.items() if m == model and s > 0}
        s0 = max(known)
        for size in sizes:
            if size > 0:
                out[(model, size)] = known.get(size, known[s0] * size / s0)
    return out


def plan_rounds(round0: Mapping[tuple[str, int], tuple[float, float]], sizes: Sequence[int], budgets: Sequence[int],
                target: int, k: int, delta: float, settings: AdaptiveSettings) -> list[Plan]:
    """Round 1 of every budget from round 0's fine-tunes, `round0[(model, size)] = (loss, FLOPs)`
    (the union of every budget's round 0); each budget plans from its own round-0 sizes."""
    plans = []
    for budget in budgets:
        first = first_round_sizes(sizes, budget, settings)
        owned: dict[str, dict[int, float]] = {}
        measured = {}
        for (m, s), (loss, flops) in round0.items():
            if s in first:
                owned.setdefault(m, {})[s] = loss
                measured[(m, s)] = flops
        plans.append(plan_round(owned, sizes, budget, target, estimated_flops(measured, sizes), k, delta, settings))
    return plans


def write_plans(plans: Sequence[Plan], path) -> None:
    """The plans as JSON, atomically: per budget its compute, the FLOPs planned and the purchases."""
    write_json([asdict(p) for p in plans], path)


def read_plans(path) -> list[Plan]:
    """Plans written by `write_plans`."""
    return [Plan(p["budget"], p["compute"], p["spent"], tuple((m, int(s)) for m, s in p["buys"]))
            for p in json.loads(open(path).read())]


def selection_of(owned: Mapping[str, Mapping[int, float]], models: Sequence[str], budget: int, target: int,
                 k: int, delta: float, settings: AdaptiveSettings, prior: LibraryPrior | None = None):
    """The `Selection` of Adaptive at one budget from everything bought (its finetunes)."""
    found = forecasts({m: owned[m] for m in models}, target, k, delta, settings, prior)
    predictions = tuple(math.exp(found[m].log_mu) for m in models)
    finetunes = tuple((m, s) for m in models for s in sorted(owned[m]))
    return Selection("Adaptive", budget, target, tuple(models), predictions, False, finetunes, predictions)


class Shop:
    """The cells of a loss table, sold one (model, size) at a time: what was bought is recorded, and
    a size above `limit` (or the target) cannot be bought: Adaptive's guard against reading truth."""

    def __init__(self, table, limit: int, target: int):
        self.table, self.limit, self.target = table, limit, target
        self.owned: dict[str, dict[int, float]] = {m: {} for m in table.models}

    def buy(self, model: str, size: int) -> float:
        if size > self.limit or size >= self.target:
            raise RuntimeError(f"{self.table.benchmark}: Adaptive may not read {model} at size {size} "
                               f"(limit {self.limit}, target {self.target})")
        loss = float(self.table.curve(model, (size,))[0])
        self.owned[model][size] = loss
        return loss

    @property
    def finetunes(self) -> tuple[tuple[str, int], ...]:
        return tuple((m, s) for m in self.table.models for s in sorted(self.owned[m]))


@selector("Adaptive")
def adaptive(table, budgets, target, settings, terms):
    """Two rounds within AtS's least compute (this module), on the cells of the table it buys."""
    if not terms.flops:
        raise ValueError("Adaptive needs the FLOPs of every fine-tune (rule finetune_flops) to spend its compute")
    knobs = settings.adaptive()
    if knobs.prior and any(t.benchmark == table.benchmark for t in terms.library):
        raise ValueError(f"{table.benchmark}: Adaptive's prior may not learn from the benchmark it evaluates")
    prior = LibraryPrior.learn(terms.library, settings.ats_k, settings.ats_delta) if knobs.prior else None
    selections = []
    for budget in budgets:
        shop = Shop(table, knobs.reach * budget, target)
        for model in table.models:
            for size in first_round_sizes(table.sizes, budget, knobs):
                shop.buy(model, size)
        round0 = {(m, s): (shop.owned[m][s], terms.flops[(m, s)]) for m, s in shop.finetunes}
        plan = plan_rounds(round0, table.sizes, [budget], target, settings.ats_k, settings.ats_delta, knobs)[0]
        for model, size in plan.buys:
            shop.buy(model, size)
        selections.append(selection_of(shop.owned, table.models, budget, target, settings.ats_k,
                                              settings.ats_delta, knobs, prior))
    return selections
