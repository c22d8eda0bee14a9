"""Race: fine-tune every candidate a little, then extend only the contenders, round by round, inside one FLOPs budget.

The pick is what a practitioner pays for, so the compute goes where the pick is decided:

- **Round 0.** Every candidate is fine-tuned on the sizes of round 0 (on published curves and the
  grid's evaluation: every training size <= b / `first`, b the budget, and at least the k + 1 smallest,
  the sizes AtS's walk tests; in select mode: every size up to `select.budget`).
- **Forecast.** After each round, each candidate's AtS line on the sizes it owns predicts its loss at
  the target N; its largest size is its cap and H_m = log(N / cap_m) its horizon. The line's error per
  unit of log-horizon is measured once, on round 0, where every candidate owns the same sizes: the line
  from the sizes up to each of the `backtests` largest sizes below the cap predicts the loss at the cap,
  z = (log predicted - log true) / log(cap / cut), pooled over every candidate; s = the spread of z
  around its mean. Then

      log L_m(N) ~ Normal(log mu_m, sigma_m^2),  mu_m = AtS_m(N),
      sigma_m^2 = (s H_m)^2 + (kappa_m H_m^2 / 2)^2

  (kappa_m the local curvature of m's owned curve, `uncertainty.local_curvature`), so a contender
  extended further gets a shorter horizon and a narrower forecast. The mean of z (the bias select
  mode's intervals correct for) is not subtracted: measured on round 0's small sizes it does not hold
  at the larger ones, and correcting for it lowered the held-out RelAcc on both published benchmarks
  (docs/paper-mode.md, "Race against AtS").
- **The pick** is the candidate with the lowest expected loss, E[L_m] = mu_m exp(sigma_m^2 / 2): the
  regret a user pays is linear in the loss, so the risk-neutral choice minimises the mean; a wide
  forecast is not preferred for its optimistic tail (P(best) favours it; the median ignores the width).
  Ranks follow the same rule; P(best) is the pick's confidence.
- **Contenders.** After round 0, the `contenders` candidates of lowest expected loss whose expected
  loss is within `margin` (relative) of the best of them; after each later round, the same rule among
  the previous round's contenders only: a candidate dropped once is never fine-tuned again (it keeps
  its forecast, and may still be the pick when the extended ones fall behind it).
- **Round r >= 1.** Each contender's largest size is doubled (the next size of the ladder), never to
  the target (nor past `reach` x b when a reach is set; by default none: the cap is the limit), best
  first while the total FLOPs stay within the cap.
- **Stop** when the pick's P(best) >= `settle_p_best` (0: never settle early), after `max_rounds`
  rounds, or when no contender can be extended within the cap (and the reach).

The cap: on the published curves and the grid, C(b) = the least compute AtS itself spends at b
(`adaptive.compute_of`), so that Race's FLOPs are <= AtS's in every cell; in select mode,
`select.flops_budget`. The FLOPs of a fine-tune are planned before it runs from those already measured
(`adaptive.estimated_flops`: proportional to the examples).

P(best) lets a share `shared` of every forecast's variance be one error common to the benchmark
(`p_best_shared`): the forecasts of one benchmark share its extrapolation bias.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

from lensllm.selection.adaptive import Shop, compute_of, estimated_flops
from lensllm.selection.ats import ats_fit
from lensllm.selection.registry import RaceSettings, Selection, selector
from lensllm.selection.uncertainty import local_curvature

_HERMITE = np.polynomial.hermite_e.hermegauss(48)
Owned = Mapping[str, Mapping[int, float]]
Finetune = tuple[str, int]


@dataclass(frozen=True)
class Calibration:
    """The AtS line's log error per unit of log-horizon on round 0: its mean (bias, reported, not
    subtracted) and spread."""

    bias: float
    spread: float
    n: int


@dataclass(frozen=True)
class Standing:
    """One candidate after a round: its cap, its forecast at the target, and P(best)."""

    model: str
    cap: int
    median: float
    sigma: float
    expected: float
    p_best: float


@dataclass(frozen=True)
class RaceRound:
    """One round: what it bought and cost, the standings after it (best first), the contenders, what
    the next round buys, and why the race stops here ('' while it goes on)."""

    index: int
    bought: tuple[Finetune, ...]
    flops: float
    spent: float
    standings: tuple[Standing, ...]
    contenders: tuple[str, ...]
    next: tuple[Finetune, ...]
    stopped: str

    @property
    def pick(self) -> Standing:
        return self.standings[0]


def p_best_shared(log_mu: Sequence[float], sigma: Sequence[float], shared: float) -> np.ndarray:
    """P(each model has the lowest loss) when a share `shared` of each forecast's variance is one
    error common to the benchmark: log L_m = log mu_m + sigma_m (sqrt(shared) Z + sqrt(1 - shared) e_m),
    Z and e_m independent standard normals. Given Z the models are independent, so

        P_m = E_Z[ E_{e_m}[ prod_{j != m} P(L_j > L_m | Z) ] ],

    by Gauss-Hermite quadrature over Z and over each model's own e_m, renormalised to sum to 1. With
    shared = 0 it is `uncertainty.Forecast.p_best` (independent forecasts). The common error moves
    every forecast the same way, in proportion to its width: it reorders two forecasts only as far as
    their widths differ, so close forecasts of equal width are told apart by their own errors alone."""
    mu, s = np.asarray(log_mu, dtype=float), np.asarray(sigma, dtype=float)
    if len(mu) == 0:
        return np.zeros(0)
    nodes, weights = _HERMITE
    weights = weights / weights.sum()
    own = np.maximum(s * math.sqrt(1 - shared), 1e-12)
    index = np.arange(len(mu))
    total = np.zeros(len(mu))
    for z, wz in zip(nodes, weights):
        centre = mu + s * math.sqrt(shared) * z
        x = centre[:, None] + own[:, None] * nodes[None, :]  # model m's quadrature points
        log_sf = log_ndtr(-(x[:, :, None] - centre[None, None, :]) / own[None, None, :])
        log_sf[index, :, index] = 0.0
        total += wz * (np.exp(log_sf.sum(axis=2)) * weights[None, :]).sum(axis=1)
    return total / total.sum() if total.sum() > 0 else np.full(len(mu), 1.0 / len(mu))


def calibrate(owned: Owned, k: int, delta: float, backtests: int) -> Calibration:
    """Bias and spread of the AtS line's log error per unit log-horizon, pooled over every candidate's
    backtests inside what it owns (see the module docstring); 0 and 0 with fewer than two errors."""
    z = []
    for points in owned.values():
        sizes = sorted(points)
        cap = sizes[-1]
        for cut in [s for s in sizes if s < cap][-backtests:]:
            past = [s for s in sizes if s <= cut]
            if len(past) >= 2:
                fit = ats_fit(past, [points[s] for s in past], k, delta)
                z.append((math.log(float(fit.predict(cap))) - math.log(points[cap])) / math.log(cap / cut))
    if len(z) < 2:
        return Calibration(0.0, 0.0, len(z))
    z = np.asarray(z, dtype=float)
    return Calibration(float(z.mean()), float(np.sqrt(np.mean((z - z.mean()) ** 2))), len(z))


def standings(owned: Owned, target: int, k: int, delta: float, calibration: Calibration,
              settings: RaceSettings) -> tuple[Standing, ...]:
    """Every candidate's forecast from the sizes it owns, best (lowest expected loss) first."""
    models, caps, log_mu, sigma = list(owned), [], [], []
    for model in models:
        sizes = sorted(owned[model])
        losses = [owned[model][s] for s in sizes]
        horizon = math.log(target / sizes[-1])
        kappa = local_curvature(sizes, losses, settings.curvature_window)
        caps.append(sizes[-1])
        log_mu.append(math.log(float(ats_fit(sizes, losses, k, delta).predict(target))))
        sigma.append(max(math.hypot(calibration.spread * horizon, kappa * horizon**2 / 2), 1e-9))
    return rank(models, caps, log_mu, sigma, settings.shared)


def rank(models: Sequence[str], caps: Sequence[int], log_mu: Sequence[float], sigma: Sequence[float],
         shared: float) -> tuple[Standing, ...]:
    """The standings of log-normal forecasts, by expected loss E[L] = exp(log mu + sigma^2 / 2)
    (ties by name), each with its P(best) under the shared-error model."""
    chance = p_best_shared(log_mu, sigma, shared)
    found = [Standing(m, c, math.exp(mu), s, math.exp(mu + s * s / 2), float(p))
             for m, c, mu, s, p in zip(models, caps, log_mu, sigma, chance)]
    return tuple(sorted(found, key=lambda f: (f.expected, f.model)))


def contenders(ranked: Sequence[Standing], settings: RaceSettings, previous: Sequence[str] | None = None) -> tuple[str, ...]:
    """The candidates of lowest expected loss (at most `contenders`; only among the `previous` round's
    contenders after round 0), within `margin` of the best of them."""
    eligible = [f for f in ranked if previous is None or f.model in previous][: settings.contenders]
    lead = eligible[0].expected
    return tuple(f.model for f in eligible if f.expected <= lead * (1 + settings.margin))


def next_size(ladder: Sequence[int], cap: int, limit: int, target: int) -> int | None:
    """The size after `cap` on the ladder, if it is at most `limit` (`RaceSettings.limit`) and below
    the target."""
    higher = [s for s in sorted(ladder) if cap < s <= limit and s < target]
    return higher[0] if higher else None


def race_round(index: int, owned: Owned, cost: Mapping[Finetune, float], bought: Sequence[Finetune],
               ladder: Sequence[int], budget: int, target: int, cap_flops: float, k: int, delta: float,
               calibration: Calibration, settings: RaceSettings, previous: Sequence[str] | None = None) -> RaceRound:
    """Round `index` once its fine-tunes (`bought`) are in `owned` and `cost`: the standings, and what
    the next round buys (best contender first, while the planned FLOPs fit under `cap_flops`) or why
    the race stops; `previous` are the last round's contenders (None in round 0). The one step of
    every race: on a table (`run_race`) and on the grid (a checkpoint per round)."""
    ranked = standings(owned, target, k, delta, calibration, settings)
    leaders = contenders(ranked, settings, previous)
    spent = float(sum(cost.values()))
    planned = estimated_flops(cost, sorted({*ladder, *(s for _, s in cost)}))
    buys, total = [], spent
    limit = settings.limit(budget, target)
    larger = {m: next_size(ladder, max(owned[m]), limit, target) for m in leaders}
    for model, size in larger.items():
        if size is not None and total + planned[(model, size)] <= cap_flops:
            buys.append((model, size))
            total += planned[(model, size)]
    stopped = ""
    if settings.settle_p_best and ranked[0].p_best >= settings.settle_p_best:
        stopped = f"settled: P(best) of {ranked[0].model} is {ranked[0].p_best:.2f} >= {settings.settle_p_best}"
    elif index >= settings.max_rounds:
        stopped = f"max_rounds: {settings.max_rounds} rounds after round 0 were run"
    elif not any(larger.values()):
        stopped = "no larger size: every contender is fine-tuned at the largest size below the target" + (
            "" if settings.reach is None else " and within the reach")
    elif not buys:
        stopped = "budget spent: no contender can be extended within the FLOPs budget"
    return RaceRound(index, tuple(bought), float(sum(cost[b] for b in bought)), spent, ranked, leaders,
                     () if stopped else tuple(buys), stopped)


def run_race(buy: Callable[[str, int], float], measured: Callable[[str, int], float], models: Sequence[str],
             round0: Sequence[int], ladder: Sequence[int], budget: int, target: int, cap_flops: float,
             k: int, delta: float, settings: RaceSettings) -> tuple[RaceRound, ...]:
    """Every round of a race through `buy(model, size) -> loss` (a fine-tune, or a cell of a table)
    and `measured(model, size)`, the FLOPs that fine-tune cost."""
    owned: dict[str, dict[int, float]] = {m: {} for m in models}
    cost: dict[Finetune, float] = {}
    bought: Sequence[Finetune] = [(m, s) for m in models for s in round0]
    rounds: list[RaceRound] = []
    calibration = None
    while True:
        for model, size in bought:
            owned[model][size] = buy(model, size)
            cost[(model, size)] = measured(model, size)
        calibration = calibration or calibrate(owned, k, delta, settings.backtests)
        previous = rounds[-1].contenders if rounds else None
        rounds.append(race_round(len(rounds), owned, cost, bought, ladder, budget, target, cap_flops, k, delta,
                                 calibration, settings, previous))
        if rounds[-1].stopped:
            return tuple(rounds)
        bought = rounds[-1].next


def round0_sizes(sizes: Sequence[int], budget: int, first: int, k: int) -> tuple[int, ...]:
    """The training sizes of round 0 on a table: every one <= b / first, and at least the k + 1
    smallest up to b (the sizes AtS's walk tests)."""
    train = sorted(s for s in sizes if 0 < s <= budget)
    chosen = [s for s in train if s * first <= budget]
    return tuple(chosen if len(chosen) >= k + 1 else train[: k + 1])


def race_on_table(table, budget: int, target: int, flops: Mapping[Finetune, float], k: int, delta: float,
                  settings: RaceSettings) -> tuple[tuple[RaceRound, ...], tuple[Finetune, ...]]:
    """A race on the cells of a loss table (published curves, or the grid's complete table) within
    AtS's least compute at `budget`; returns its rounds and every (model, size) it bought. Round 0's
    smallest sizes are left out while round 0 alone would cost more than the cap (small budgets)."""
    shop = Shop(table, settings.limit(budget, target), target)
    cap = compute_of(table.models, table.sizes, budget, flops, k)
    round0 = list(round0_sizes(table.sizes, budget, settings.first, k))
    while len(round0) > 2 and sum(flops[(m, s)] for m in table.models for s in round0) > cap:
        round0.pop(0)
    rounds = run_race(shop.buy, lambda m, s: flops[(m, s)], table.models, round0, [s for s in table.sizes if s > 0],
                      budget, target, cap, k, delta, settings)
    return rounds, shop.finetunes


@selector("Race")
def race(table, budgets, target, settings, terms):
    """Rounds that extend only the contenders, within AtS's least compute (this module). Every
    candidate's score is its expected loss at the target from the last size it reached."""
    if not terms.flops:
        raise ValueError("Race needs the FLOPs of every fine-tune (rule finetune_flops) to spend its compute")
    knobs = settings.race()
    selections = []
    for budget in budgets:
        rounds, finetunes = race_on_table(table, budget, target, terms.flops, settings.ats_k, settings.ats_delta, knobs)
        expected = {f.model: f.expected for f in rounds[-1].standings}
        scores = tuple(expected[m] for m in table.models)
        selections.append(Selection("Race", budget, target, table.models, scores, False, finetunes, scores))
    return selections
