"""Fit scaling laws to loss curves, in log-loss space, with bounds and a seeded multi-start.

For each curve the objective is

    J(theta) = 1/2 * sum_i w_i (log L_theta(D_i) - log L_i)^2,

minimised inside the law's box bounds. Starting points are the best points of the law's closed-form
grid (`Law.grid_starts`) plus seeded random perturbations of the best one
(`numpy.random.default_rng(seed)`). Every start of every curve is refined at once by a batched,
projected Levenberg-Marquardt iteration (analytic Jacobians, Marquardt scaling, variables held at an
active bound frozen), so that fitting hundreds of curves takes milliseconds, not minutes. The
lowest objective wins. Each fit is a frozen `FitResult` with a status, never a silent NaN.

`fit_curves` is a pure function of its arguments, and its results are frozen, so the last
`_MEMO_SIZE` calls are remembered by the exact bytes of their inputs: the calibration's backtests
refit the same truncated curves that the smaller budgets fitted already (same inputs, same
results, no second fit).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

import numpy as np

from lensllm.curves.laws import Law

MAX_ITERATIONS = 1000
_RELATIVE_TOLERANCE = 1e-10
_STALL_WINDOW = 25
_STALL_TOLERANCE = 1e-4
_HUGE_RESIDUAL = 1e3
_MEMO_SIZE = 256
_memo: OrderedDict[tuple, list[FitResult]] = OrderedDict()


class FitStatus(str, Enum):
    """How a fit ended: usable (converged, hit_bound) or not (failed)."""

    CONVERGED = "converged"
    HIT_BOUND = "hit_bound"
    FAILED = "failed"


class FitError(RuntimeError):
    """A prediction was asked of a failed fit."""


@dataclass(frozen=True)
class FitResult:
    """A law fitted to one curve: parameters, objective, in-sample RMS of log-loss, status."""

    law: Law
    theta: tuple[float, ...]
    start: tuple[float, ...]
    objective: float
    rms_log: float
    status: FitStatus
    n_points: int
    message: str = ""
    params: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the fit can be used for prediction."""
        return self.status is not FitStatus.FAILED

    def predict(self, sizes) -> np.ndarray:
        """The fitted law at data sizes `sizes`; raises `FitError` for a failed fit."""
        if not self.ok:
            raise FitError(f"{self.law.name} fit failed ({self.message}); it cannot predict")
        values = self.law.predict(np.asarray(self.theta), np.asarray(sizes, dtype=float))
        if not np.all(np.isfinite(values)):
            raise FitError(f"{self.law.name} fit predicts a non-finite loss at sizes {sizes}")
        return values


def fit_curves(
    law: Law,
    sizes: Sequence,
    losses: Sequence,
    *,
    weights: Sequence | None = None,
    seed: int = 0,
    n_grid_starts: int = 2,
    n_random_starts: int = 1,
    bounds: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[FitResult]:
    """Fit `law` to many curves at once; curve c is the points (sizes[c], losses[c]).

    Curves may have different numbers of points. `bounds[c]`, if given, replaces the law's box for
    curve c (it is intersected with it); a parameter whose lower and upper bound are equal is held
    fixed at that value (LensLLM with a measured F). Returns one `FitResult` per curve, in order.
    """
    key = _memo_key(law, sizes, losses, weights, bounds, seed, n_grid_starts, n_random_starts)
    if key in _memo:
        _memo.move_to_end(key)
        return list(_memo[key])
    results = _fit_curves(law, sizes, losses, weights, seed, n_grid_starts, n_random_starts, bounds)
    _memo[key] = results
    if len(_memo) > _MEMO_SIZE:
        _memo.popitem(last=False)
    return list(results)


def _memo_key(law, sizes, losses, weights, bounds, *settings) -> tuple:
    """The law, the settings, and a digest of the exact bytes of every curve (and its weights and bounds)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (sizes, losses, weights, *(zip(*bounds) if bounds is not None else ())):
        if part is None:
            digest.update(b"none")
            continue
        for values in part:
            array = np.ascontiguousarray(values, dtype=float)
            digest.update(str(array.shape).encode())
            digest.update(array.tobytes())
        digest.update(b"|")
    return (law, *settings, bounds is not None, digest.hexdigest())


def _fit_curves(law, sizes, losses, weights, seed, n_grid_starts, n_random_starts, bounds) -> list[FitResult]:
    n_curves = len(sizes)
    results: list[FitResult | None] = [None] * n_curves
    problems = []
    for c in range(n_curves):
        x, y = np.asarray(sizes[c], dtype=float), np.asarray(losses[c], dtype=float)
        w = np.ones_like(y) if weights is None else np.asarray(weights[c], dtype=float)
        if x.shape != y.shape or x.shape != w.shape or x.ndim != 1 or len(x) < 2:
            results[c] = _failed(law, len(y), "needs at least two points with matching sizes and losses")
        elif not (np.all(np.isfinite(y)) and np.all(y > 0) and np.all(x >= 0)):
            results[c] = _failed(law, len(y), "losses must be positive and finite, sizes non-negative")
        else:
            problems.append((c, x, y, w))
    if not problems:
        return results

    # Pad to a rectangle: padded points get weight 0, so they do not count.
    width = max(len(x) for _, x, _, _ in problems)
    rng = np.random.default_rng(seed)
    owners, starts, rows = [], [], []
    for c, x, y, w in problems:
        pad = width - len(x)
        row = (np.pad(x, (0, pad), constant_values=1.0), np.pad(y, (0, pad), constant_values=1.0), np.pad(w, (0, pad)))
        lower, upper = law.bounds(y)
        if bounds is not None:
            lower, upper = _intersect(lower, upper, *bounds[c])
        for start in _starts(law, x, y, w, lower, upper, rng, n_grid_starts, n_random_starts):
            owners.append(c)
            starts.append(start)
            rows.append((*row, lower, upper))
    x, y, w, lower, upper = (np.stack(parts) for parts in zip(*rows))
    start = np.stack(starts)
    theta, cost, converged = _levenberg_marquardt(law, start, x, np.log(y), np.sqrt(w), lower, upper)

    owners = np.array(owners)
    for c, _, y_c, w_c in problems:
        mine = np.flatnonzero(owners == c)
        best = mine[np.argmin(np.where(np.isfinite(cost[mine]), cost[mine], np.inf))]
        results[c] = _result(law, theta[best], start[best], cost[best], converged[best], lower[best], upper[best], x[best, : len(y_c)], y_c)
    return results


def _intersect(lower, upper, own_lower, own_upper) -> tuple[np.ndarray, np.ndarray]:
    """The law's box narrowed by a curve's own bounds; an empty range collapses to one point."""
    lo = np.clip(np.asarray(own_lower, dtype=float), lower, upper)
    hi = np.clip(np.asarray(own_upper, dtype=float), lower, upper)
    return lo, np.maximum(hi, lo)


def _starts(law, x, y, w, lower, upper, rng, n_grid, n_random) -> list[np.ndarray]:
    """The `n_grid` best grid points, then `n_random` seeded perturbations of the best one."""
    grid = np.clip(law.grid_starts(x, y, w, lower, upper), lower, upper)
    with np.errstate(all="ignore"):
        pred = law.predict(grid.T[:, :, None], x)
        cost = np.sum(w * (np.log(np.maximum(pred, 1e-300)) - np.log(y)) ** 2, axis=1)
    cost = np.where(np.isfinite(cost), cost, np.inf)
    starts = [grid[i] for i in np.argsort(cost, kind="stable")[:n_grid]]
    spread = np.minimum(upper - lower, 10.0)
    for _ in range(n_random):
        starts.append(np.clip(starts[0] + rng.normal(0.0, 0.05, size=len(lower)) * spread, lower, upper))
    return starts


def _levenberg_marquardt(law, theta, x, log_y, root_w, lower, upper):
    """Minimise every row's 1/2 ||root_w * (log L_theta(x) - log_y)||^2 inside [lower, upper].

    Returns the final parameters, objectives and a flag per row: True when the relative decrease
    of the objective (in one step, or over a window of steps) or the projected gradient fell below
    tolerance, False at the iteration limit.
    Rows that are done drop out of the batch, so slow rows do not make fast ones pay.
    """
    theta = theta.copy()
    eye = np.eye(theta.shape[1])

    def residuals(t, rows):
        with np.errstate(all="ignore"):
            pred = law.predict(t.T[..., None], x[rows])
            r = (np.log(np.maximum(pred, 1e-300)) - log_y[rows]) * root_w[rows]
        return np.where(np.isfinite(r), r, _HUGE_RESIDUAL)

    everything = np.arange(len(theta))
    r = residuals(theta, everything)
    cost = 0.5 * np.sum(r**2, axis=1)
    damping = np.full(len(theta), 1e-3)
    done = np.zeros(len(theta), dtype=bool)
    edge = 1e-9 * (upper - lower)
    checkpoint = cost.copy()
    for iteration in range(1, MAX_ITERATIONS + 1):
        rows = np.flatnonzero(~done)
        if len(rows) == 0:
            break
        t, res, lo, hi, lam = theta[rows], r[rows], lower[rows], upper[rows], damping[rows]
        with np.errstate(all="ignore"):
            jac = law.log_jacobian(t.T[..., None], x[rows]) * root_w[rows][..., None]
        jac = np.where(np.isfinite(jac), jac, 0.0)
        grad = np.einsum("pnk,pn->pk", jac, res)
        # A variable at a bound whose descent direction points out of the box is held there.
        held = ((t <= lo + edge[rows]) & (grad > 0)) | ((t >= hi - edge[rows]) & (grad < 0))
        free = ~held
        projected = np.where(free, grad, 0.0)
        stationary = np.max(np.abs(projected), axis=1) <= _RELATIVE_TOLERANCE * np.maximum(cost[rows], 1e-30)
        hess = np.einsum("pnk,pnj->pkj", jac, jac)
        scale = np.maximum(np.diagonal(hess, axis1=1, axis2=2), 1e-12)
        system = hess + lam[:, None, None] * scale[:, :, None] * eye
        system = np.where(free[:, :, None] & free[:, None, :], system, 0.0) + held[:, :, None] * eye
        trial = np.clip(t + np.linalg.solve(system, -projected[..., None])[..., 0], lo, hi)
        r_trial = residuals(trial, rows)
        cost_trial = 0.5 * np.sum(r_trial**2, axis=1)
        better = (cost_trial < cost[rows]) & ~stationary
        decrease = (cost[rows] - cost_trial) / np.maximum(cost[rows], 1e-30)
        accepted = rows[better]
        theta[accepted], r[accepted], cost[accepted] = trial[better], r_trial[better], cost_trial[better]
        damping[rows] = np.where(better, np.maximum(lam / 3.0, 1e-12), lam * 4.0)
        done[rows] = stationary | (better & (decrease < _RELATIVE_TOLERANCE)) | (damping[rows] > 1e12)
        if iteration % _STALL_WINDOW == 0:
            # Along a flat valley (e.g. the vanilla law with E = 0, where only alpha * beta and
            # B^alpha matter) the objective stops improving long before the parameters settle.
            done |= (checkpoint - cost) <= _STALL_TOLERANCE * np.maximum(cost, 1e-30)
            checkpoint = cost.copy()
    return theta, cost, done


def _result(law, theta, start, cost, converged, lower, upper, x, y) -> FitResult:
    with np.errstate(all="ignore"):
        pred = law.predict(theta, x)
    if not (np.isfinite(cost) and np.all(np.isfinite(pred)) and np.all(pred > 0)):
        return _failed(law, len(y), "the fit did not reach a finite objective")
    rms = float(np.sqrt(np.mean((np.log(pred) - np.log(y)) ** 2)))
    width = upper - lower
    at_bound = [name for name, v, lo, hi, s in zip(law.param_names, theta, lower, upper, width)
                if s > 0 and (v - lo <= 1e-6 * s or hi - v <= 1e-6 * s)]  # s = 0: held fixed, not a bound
    if not converged:
        status, message = FitStatus.FAILED, f"no convergence in {MAX_ITERATIONS} iterations"
    elif at_bound:
        status, message = FitStatus.HIT_BOUND, "at bound: " + ",".join(at_bound)
    else:
        status, message = FitStatus.CONVERGED, ""
    return FitResult(
        law=law,
        theta=tuple(float(v) for v in theta),
        start=tuple(float(v) for v in start),
        objective=float(cost),
        rms_log=rms,
        status=status,
        n_points=len(y),
        message=message,
        params=law.natural(theta),
    )


def _failed(law: Law, n_points: int, message: str) -> FitResult:
    nan = tuple(float("nan") for _ in law.param_names)
    return FitResult(law, nan, nan, float("nan"), float("nan"), FitStatus.FAILED, n_points, message)
