"""Calibrated uncertainty of the predicting selectors: intervals, P(best), and their calibration.

A predicting selector (`PREDICTING`) gives each model a point prediction p_m of its loss at the
target size N from the fine-tunes up to a budget b. `forecast` turns it into a predictive
distribution, using only the table's columns up to b (it truncates the table first), so it works
the same in the evaluation modes and in select mode, where nothing above b exists and N may be far
above every column:

    log L_m(N) ~ Normal(mu_m, sigma_m^2),   H = log(N / b)  (the horizon of the forecast)
    mu_m      = log p_m - bias * H
    sigma_m^2 = (s * H)^2 + (kappa_m * H^2 / 2)^2

1. **Backtest** (the error of the method's own line of reasoning, inside the budget). The selector
   is re-run on the same curves cut at the `backtests` largest training sizes c below b that leave
   at least two training sizes (b/2, b/4, b/8 on a doubling grid) and asked to predict the loss at
   b, which is known. Each model's log error e = log(predicted) - log(true) at horizon
   h = log(b / c) gives a per-unit-horizon error z = e / h. The z of every model and cut are
   pooled (the same benchmark, the same budget): `bias` = mean(z), s^2 = mean((z - bias)^2).
   Scaling by the horizon (exponent 1) is the first-order error of an extrapolation: an error in
   the fitted log-log slope moves the prediction by slope error x log-horizon.
2. **Curvature** (the second-order term the backtest cannot see). A line or law extrapolated
   from b misses a log-log curve that keeps bending by kappa * H^2 / 2 (Taylor). kappa_m is the
   second derivative d^2 log L / d (log D)^2 of a quadratic fitted by least squares to model m's
   points in the upper half of the in-budget log-size range, log D >= (log D_min + log b) / 2
   (at least its last three points; 0 with fewer than three training sizes), i.e. the local
   curvature where the extrapolation starts, not the pre-power bend of the smallest sizes. It is
   added as spread, not as a correction, since nothing inside the budget says it persists.

The interval at level a is exp(mu_m -/+ z_a sigma_m), z_a = Phi^-1((1 + a) / 2). P(best) is the
probability that a model's loss at N is the lowest, the models taken as independent:
P_m = E_{x ~ N(mu_m, sigma_m)} prod_{j != m} (1 - Phi((x - mu_j) / sigma_j)), by Gauss-Hermite
quadrature on each model's own normal (deterministic), renormalised to sum to 1. The log score is
the log predictive density of the true loss L, i.e. of a log-normal:
log N(log L; mu, sigma) - log L.

How the constants were chosen (never on the benchmark being evaluated). Every constant is fixed
in config (`uncertainty`) and was fixed from first principles, then checked on both published
benchmarks (FLAN, Gigaword):
- horizon exponent 1 (first-order slope error; exponent 1.5 fits FLAN, 1 Gigaword: errors do not
  transfer between benchmarks, so none was fitted to either);
- `backtests` = 3 cuts (b/2, b/4, b/8: the horizons a short extrapolation tests);
- the backtest bias correction: improves the mean log score on both benchmarks (a choice that
  leave-one-benchmark-out agrees on);
- the curvature coefficient 1/2 (Taylor) and `curvature_window` = 0.5 (the upper half of the
  in-budget log range: the curvature at the budget). A window over the whole range covers less on
  FLAN (mean 68% for AtS) and the last 3-5 points give 70-84% on FLAN and 93-97% on Gigaword;
  see docs/select-mode.md for the measured coverage.
Errors of different models share the benchmark's bias; P(best) ignores that correlation.

`calibration` measures all this where the truth is known: for each method and budget target /
ratio, the share of models whose true loss at the target falls inside the interval, and the mean
log score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.special import log_ndtr, ndtri

from lensllm.curves.budgets import budgets_for
from lensllm.curves.losstable import LossTable
from lensllm.selection.registry import ModelTerms, SelectionSettings, run_selector

# The selectors that predict a loss at the target (the others only rank).
PREDICTING = ("AtS", "RectifiedFit", "VanillaFit", "LensLLM", "LensLLM-NTK-fixed", "LensLLM-NTK-fitted")
CALIBRATION_COLUMNS = ["benchmark", "method", "ratio", "budget", "level", "coverage", "mean_log_score", "n_models"]
_HERMITE = np.polynomial.hermite_e.hermegauss(96)  # nodes and weights for E over a standard normal


@dataclass(frozen=True)
class UncertaintySettings:
    """The interval level, the number of backtest cuts, and the curvature window (see the module)."""

    level: float = 0.8
    backtests: int = 3
    curvature_window: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise ValueError(f"uncertainty setting level must be in (0, 1), got {self.level}")
        if self.backtests < 1:
            raise ValueError(f"uncertainty setting backtests must be at least 1, got {self.backtests}")
        if not 0 <= self.curvature_window < 1:
            raise ValueError(f"uncertainty setting curvature_window must be in [0, 1), got {self.curvature_window}")


@dataclass(frozen=True)
class Forecast:
    """Predictive distribution of each model's loss at `target` from one method at one budget:
    log L ~ Normal(log median, sigma^2), independently across models (see the module docstring).

    `excluded` lists the models without a forecast and why (as `Selection.excluded`); `bias`,
    `spread` and `n_backtest` are the pooled backtest's mean and spread of the log error per unit
    of log-horizon, and the number of errors pooled.
    """

    method: str
    budget: int
    target: int
    models: tuple[str, ...]
    median: tuple[float, ...]
    sigma: tuple[float, ...]
    excluded: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    bias: float = 0.0
    spread: float = float("nan")
    n_backtest: int = 0

    def __post_init__(self) -> None:
        if not len(self.models) == len(self.median) == len(self.sigma):
            raise ValueError("Forecast: models, median and sigma must have the same length")
        if any(not (s > 0 and math.isfinite(s)) for s in self.sigma):
            raise ValueError(f"Forecast: every sigma must be positive and finite, got {self.sigma}")
        if any(not (m > 0 and math.isfinite(m)) for m in self.median):
            raise ValueError(f"Forecast: every median must be positive and finite, got {self.median}")

    def interval(self, level: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        """The central interval of each model's loss at `level`: exp(log median -/+ z sigma)."""
        if not 0 < level < 1:
            raise ValueError(f"interval level must be in (0, 1), got {level}")
        z = float(ndtri(0.5 + level / 2))
        mu, sigma = np.log(self.median), np.asarray(self.sigma)
        return np.exp(mu - z * sigma), np.exp(mu + z * sigma)

    def p_best(self) -> np.ndarray:
        """P(this model has the lowest loss at target), by Gauss-Hermite quadrature; sums to 1."""
        mu, sigma = np.log(self.median), np.asarray(self.sigma)
        if len(mu) == 0:
            return np.zeros(0)
        nodes, weights = _HERMITE
        x = mu[:, None] + sigma[:, None] * nodes[None, :]  # model m's quadrature points
        # log P(L_j > x) for every j at every point of every m: shape (m, node, j)
        log_sf = log_ndtr(-(x[:, :, None] - mu[None, None, :]) / sigma[None, None, :])
        own = np.arange(len(mu))
        log_sf[own, :, own] = 0.0
        p = (np.exp(log_sf.sum(axis=2)) * weights[None, :]).sum(axis=1) / weights.sum()
        return p / p.sum() if p.sum() > 0 else np.full(len(p), 1.0 / len(p))

    def log_score(self, truth) -> np.ndarray:
        """The log predictive density of each true loss (log-normal density at the true L)."""
        y = np.log(np.asarray(truth, dtype=float))
        mu, sigma = np.log(self.median), np.asarray(self.sigma)
        return -0.5 * ((y - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi) - y

    def covers(self, truth, level: float = 0.8) -> np.ndarray:
        """Whether each true loss lies inside the interval at `level`."""
        low, high = self.interval(level)
        truth = np.asarray(truth, dtype=float)
        return (truth >= low) & (truth <= high)


def truncate(table: LossTable, budget: int) -> LossTable:
    """The loss table without its columns above `budget` (what select mode has)."""
    keep = [j for j, s in enumerate(table.sizes) if s <= budget]
    return LossTable(table.benchmark, table.models, tuple(table.sizes[j] for j in keep),
                     np.array(table.losses[:, keep]), np.array(table.params), table.families)


def backtest_cuts(table: LossTable, budget: int, n: int) -> list[int]:
    """The `n` largest training sizes below `budget` that leave at least two training sizes."""
    return [c for c in table.train_sizes(budget) if c < budget and len(table.train_sizes(c)) >= 2][-n:]


def local_curvature(sizes: Sequence[int], losses: Sequence[float], window: float = 0.5) -> float:
    """d^2 log L / d(log D)^2 of one curve from a quadratic on the upper part of its log-size range
    (log D >= log D_min + window * (log D_max - log D_min); at least three points; 0 with fewer)."""
    if len(sizes) < 3:
        return 0.0
    x = np.log(np.asarray(sizes, dtype=float))
    keep = x >= x[0] + window * (x[-1] - x[0]) - 1e-12
    if keep.sum() < 3:
        keep[-3:] = True
    return float(2.0 * np.polyfit(x[keep] - x[-1], np.log(np.asarray(losses, dtype=float))[keep], 2)[0])


def curvature(table: LossTable, budget: int, window: float = 0.5) -> dict[str, float]:
    """Each model's `local_curvature` over its training sizes up to `budget`."""
    sizes = table.train_sizes(budget)
    return {m: local_curvature(sizes, table.curve(m, sizes), window) for m in table.models}


def forecast(
    method: str,
    table: LossTable,
    budgets: Sequence[int],
    target: int,
    settings: SelectionSettings | None = None,
    terms: ModelTerms | None = None,
    uncertainty: UncertaintySettings | None = None,
) -> list[Forecast]:
    """One `Forecast` per budget of `method`'s predicted losses at `target`, from the table's
    columns up to each budget only (see the module docstring for the formula)."""
    if method not in PREDICTING:
        raise ValueError(f"{method} does not predict a loss; forecasts exist for {', '.join(PREDICTING)}")
    settings = settings or SelectionSettings()
    uncertainty = uncertainty or UncertaintySettings()
    forecasts = []
    for budget in budgets:
        if target <= budget:
            raise ValueError(f"{table.benchmark}: the target size {target} must be above the budget {budget}")
        seen = truncate(table, budget)
        main = run_selector(method, seen, [budget], target, settings, terms)[0]
        cuts = backtest_cuts(seen, budget, uncertainty.backtests)
        truth = dict(zip(seen.models, seen.column(budget)))
        z = []
        # One cut at a time: the fit on the sizes up to a cut is the fit of the smaller budget
        # equal to that cut, which `fit_curves` remembers, so each cut is fitted once per run.
        for past in (run_selector(method, seen, [cut], budget, settings, terms)[0] for cut in cuts):
            h = math.log(budget / past.budget)
            z.extend((math.log(p) - math.log(truth[m])) / h for m, p in zip(past.models, past.predictions))
        z = np.asarray(z, dtype=float)
        z = z[np.isfinite(z)]
        excluded = list(main.excluded)
        horizon = math.log(target / budget)
        if len(z) < 2:
            why = f"no backtest inside budget {budget} (cuts {cuts} gave {len(z)} usable predictions)"
            excluded.extend((m, why) for m in main.models)
            forecasts.append(Forecast(method, budget, target, (), (), (), tuple(excluded), n_backtest=len(z)))
            continue
        bias = float(z.mean())
        spread = float(np.sqrt(np.mean((z - bias) ** 2)))
        kappa = curvature(seen, budget, uncertainty.curvature_window)
        models, medians, sigmas = [], [], []
        for model, predicted in zip(main.models, main.predictions):
            sigma = math.hypot(spread * horizon, kappa[model] * horizon**2 / 2)
            if not (sigma > 0 and math.isfinite(predicted) and predicted > 0):
                excluded.append((model, f"no usable forecast (prediction {predicted}, sigma {sigma})"))
                continue
            models.append(model)
            medians.append(float(math.exp(math.log(predicted) - bias * horizon)))
            sigmas.append(float(sigma))
        forecasts.append(Forecast(method, budget, target, tuple(models), tuple(medians), tuple(sigmas),
                                  tuple(excluded), bias, spread, len(z)))
    return forecasts


def calibration(
    table: LossTable,
    methods: Sequence[str],
    target: int,
    ratios: Sequence[int],
    settings: SelectionSettings | None = None,
    level: float = 0.8,
    terms: ModelTerms | None = None,
    uncertainty: UncertaintySettings | None = None,
) -> pd.DataFrame:
    """Coverage of the `level` intervals and mean log score of each method's forecasts at each
    budget target / ratio, against the table's true losses at `target` (one row each)."""
    if target not in table.sizes:
        raise ValueError(f"{table.benchmark}: the target size {target} is not a column of the loss table {list(table.sizes)}")
    budgets = budgets_for(target, ratios)
    true = dict(zip(table.models, table.column(target)))
    rows = []
    for method in methods:
        for ratio, f in zip(budgets, forecast(method, table, list(budgets.values()), target, settings, terms, uncertainty)):
            truth = [true[m] for m in f.models]
            n = len(f.models)
            coverage = float(np.mean(f.covers(truth, level))) if n else float("nan")
            score = float(np.mean(f.log_score(truth))) if n else float("nan")
            rows.append([table.benchmark, method, ratio, f.budget, level, coverage, score, n])
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)


def coverage_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark, method and level: the mean coverage over the budgets, the worst budget's, and
    the mean log score (what select mode prints beside each interval; `config/published_coverage.tsv`
    is this table for the published curves)."""
    groups = frame.groupby(["benchmark", "method", "level"], sort=False)
    summary = groups.agg(coverage=("coverage", "mean"), worst=("coverage", "min"), mean_log_score=("mean_log_score", "mean"),
                         budgets=("budget", "count"))
    return summary.reset_index()


def calibration_markdown(frame: pd.DataFrame) -> str:
    """Per benchmark: coverage (%) of each method's intervals per ratio, its mean over the budgets,
    the worst budget, and the mean log score."""
    lines = ["# Calibration of the predicted target losses", ""]
    if frame.empty:
        return "\n".join(lines + ["No predicting method ran.", ""])
    level = float(frame["level"].iloc[0])
    lines += [f"Share of models whose true loss at the target lies inside the nominal {level:.0%} interval "
              "(see `lensllm.selection.uncertainty`), per data budget target / ratio; log score = mean log "
              "predictive density of the true losses (higher is better).", ""]
    ratios = sorted(frame["ratio"].unique())
    for benchmark in dict.fromkeys(frame["benchmark"]):
        part = frame[frame["benchmark"] == benchmark]
        lines += [f"## {benchmark}", "",
                  "| method | " + " | ".join(f"1/{r}" for r in ratios) + " | mean | worst | log score |",
                  "|---" * (len(ratios) + 4) + "|"]
        for method in dict.fromkeys(part["method"]):
            rows = part[part["method"] == method].set_index("ratio")
            cells = [_percent(rows["coverage"].get(r, float("nan"))) for r in ratios]
            coverage = rows["coverage"]
            lines.append(f"| {method} | " + " | ".join(cells)
                         + f" | {_percent(coverage.mean())} | {_percent(coverage.min())} | {_number(rows['mean_log_score'].mean())} |")
        lines.append("")
    return "\n".join(lines)


def _percent(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{100 * value:.0f}%"


def _number(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:.2f}"
