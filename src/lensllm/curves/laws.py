"""Fine-tuning scaling laws: the loss L as a function of the fine-tuning data size D.

Each law is fitted in internal coordinates ``theta`` (log-scale for parameters that span orders of
magnitude), with box bounds that keep every prediction finite, positive and non-increasing in D:

- ``vanilla``   L(D) = (B / D^beta + E)^alpha                  (Kaplan-style power law)
- ``rectified`` L(D) = B / (D_l + D^beta) + E                  (Lin et al., ICML 2024)
- ``lensllm``   L(D) = B / (F + D^beta) + E                    (Zeng et al., ICML 2025)

In the rectified law, D_l is the "pre-learned data size" that bends the curve in the small-data
pre-power phase. In LensLLM the same place is taken by F(Theta, t), an NTK-based term of the
pre-trained model; on published curves, where no weights exist, F is fitted as a free non-negative
number per model.

A law also proposes starting points: on a grid of its non-linear parameters the remaining two
enter linearly, so each grid point is solved in closed form and scored; fitting refines the best.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_TINY = 1e-12


@dataclass(frozen=True)
class Law:
    """A scaling law: its name, formula, natural parameter names and fitting box."""

    name: str
    formula: str
    param_names: tuple[str, ...]

    def predict(self, theta: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """The predicted loss at data sizes `sizes` for internal parameters `theta`.

        Broadcasts: `theta` may be a stack ``theta.T[..., None]`` of many parameter vectors, one per
        row of a 2-D `sizes`, as the batched fit uses it.
        """
        raise NotImplementedError

    def log_jacobian(self, theta: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """d log L / d theta at each size: shape sizes.shape + (len(theta),)."""
        raise NotImplementedError

    def natural(self, theta: np.ndarray) -> dict[str, float]:
        """The natural parameters (as in the formula) for internal parameters `theta`."""
        raise NotImplementedError

    def theta(self, params: dict[str, float]) -> np.ndarray:
        """Internal parameters for natural `params` (the inverse of `natural`)."""
        raise NotImplementedError

    def bounds(self, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of theta for a curve with observed `losses`."""
        raise NotImplementedError

    def grid_starts(self, sizes: np.ndarray, losses: np.ndarray, weights: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """Candidate starting points inside the box [lower, upper], one row per grid point, each
        solved in closed form."""
        raise NotImplementedError


@dataclass(frozen=True)
class SaturatingLaw(Law):
    """L(D) = B / (S + D^beta) + E with S >= 0: the rectified law (S = D_l) and LensLLM (S = F).

    theta = (log B, log S, beta, E). The law is decreasing in D for B > 0, beta > 0, and equals
    B / S + E at D = 0, so the zero-shot loss can enter the fit as the point D = 0.
    """

    def predict(self, theta, sizes):
        log_b, log_s, beta, e = theta
        return np.exp(log_b) / (np.exp(log_s) + np.power(sizes, beta)) + e

    def log_jacobian(self, theta, sizes):
        log_b, log_s, beta, e = theta
        s, d_beta = np.exp(log_s), np.power(sizes, beta)
        denom = s + d_beta
        q = np.exp(log_b) / denom  # L - E
        log_d = np.log(np.where(sizes > 0, sizes, 1.0))
        columns = [q, -q * s / denom, -q * d_beta * log_d / denom, np.ones_like(q)]
        return np.stack(columns, axis=-1) / (q + e)[..., None]

    def natural(self, theta):
        log_b, log_s, beta, e = (float(v) for v in theta)
        return {"B": float(np.exp(log_b)), self.param_names[1]: float(np.exp(log_s)), "beta": beta, "E": e}

    def theta(self, params):
        return np.array([np.log(params["B"]), np.log(params[self.param_names[1]]), params["beta"], params["E"]])

    def bounds(self, losses):
        lower = np.array([-30.0, -12.0, 0.01, 0.0])
        upper = np.array([80.0, 45.0, 3.0, max(float(np.min(losses)) * 0.999, _TINY)])
        return lower, upper

    def grid_starts(self, sizes, losses, weights, lower, upper):
        # log S spans [-4, 30], narrowed to the box (a measured F pins it to one value).
        lo_s, hi_s = min(max(-4.0, lower[1]), upper[1]), max(min(30.0, upper[1]), lower[1])
        beta, log_s = np.meshgrid(np.linspace(0.05, 1.5, 30), np.linspace(lo_s, hi_s, 35), indexing="ij")
        beta, log_s = beta.ravel(), log_s.ravel()
        basis = 1.0 / (np.exp(log_s)[:, None] + np.power(sizes[None, :], beta[:, None]))
        slope, intercept = _line_fits(basis, np.broadcast_to(losses, basis.shape), weights)
        upper_e = np.min(losses) * 0.999
        e = np.clip(intercept, 0.0, upper_e)
        b = np.maximum(slope, _TINY)
        return np.column_stack([np.log(b), log_s, beta, e])


@dataclass(frozen=True)
class VanillaLaw(Law):
    """L(D) = (B / D^beta + E)^alpha, decreasing in D for B, beta, alpha > 0.

    theta = (log B, beta, E, alpha). Undefined at D = 0, so it is fitted on non-zero sizes only.
    E >= `e_lower`: with E >= 0 (`VANILLA`) the law is defined at every D > 0, as an extrapolation
    needs; a negative E (`VANILLA_ON_RANGE`) keeps it defined only where B / D^beta + E > 0, which
    the fit keeps true at the fitted sizes (an undefined point costs the fit a huge residual).
    """

    e_lower: float = 0.0

    def predict(self, theta, sizes):
        log_b, beta, e, alpha = theta
        return np.power(np.exp(log_b) * np.power(sizes, -beta) + e, alpha)

    def log_jacobian(self, theta, sizes):
        log_b, beta, e, alpha = theta
        term = np.exp(log_b) * np.power(sizes, -beta)
        inner = term + e
        columns = [alpha * term / inner, -alpha * term * np.log(sizes) / inner, alpha / inner, np.log(inner)]
        return np.stack(np.broadcast_arrays(*columns), axis=-1)

    def natural(self, theta):
        log_b, beta, e, alpha = (float(v) for v in theta)
        return {"B": float(np.exp(log_b)), "beta": beta, "E": e, "alpha": alpha}

    def theta(self, params):
        return np.array([np.log(params["B"]), params["beta"], params["E"], params["alpha"]])

    def bounds(self, losses):
        return np.array([-40.0, 0.001, self.e_lower, 0.02]), np.array([120.0, 3.0, 1e6, 20.0])

    def grid_starts(self, sizes, losses, weights, lower, upper):
        alpha, beta = np.meshgrid(np.geomspace(0.05, 8.0, 24), np.geomspace(0.005, 2.0, 30), indexing="ij")
        alpha, beta = alpha.ravel(), beta.ravel()
        basis = np.power(sizes[None, :], -beta[:, None])
        target = np.power(losses[None, :], 1.0 / alpha[:, None])
        slope, intercept = _line_fits(basis, target, weights)
        e = np.clip(intercept, 0.0, 1e6)
        b = np.maximum(slope, _TINY)
        return np.column_stack([np.log(b), beta, e, alpha])


def _line_fits(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise weighted least-squares lines y = slope * x + intercept."""
    w = weights / weights.sum()
    xm, ym = (x * w).sum(axis=1, keepdims=True), (y * w).sum(axis=1, keepdims=True)
    var = (w * (x - xm) ** 2).sum(axis=1)
    slope = (w * (x - xm) * (y - ym)).sum(axis=1) / np.maximum(var, _TINY)
    return slope, ym[:, 0] - slope * xm[:, 0]


VANILLA = VanillaLaw("vanilla", "L(D) = (B / D^beta + E)^alpha", ("B", "beta", "E", "alpha"))
RECTIFIED = SaturatingLaw("rectified", "L(D) = B / (D_l + D^beta) + E", ("B", "D_l", "beta", "E"))
LENSLLM = SaturatingLaw("lensllm", "L(D) = B / (F + D^beta) + E", ("B", "F", "beta", "E"))

LAWS: dict[str, Law] = {law.name: law for law in (VANILLA, RECTIFIED, LENSLLM)}
# The vanilla law as a description of a curve on its measured sizes (fits.tsv, Table 3, the fit
# figures): E may be negative there, as in Lin et al.'s own fits (FLAN's facebook/bart-large-cnn
# needs it); the selectors extrapolate with VANILLA, defined at every D.
VANILLA_ON_RANGE = VanillaLaw("vanilla", VANILLA.formula, VANILLA.param_names, e_lower=-1e6)
# The boxes a law is fitted in to describe a curve on its range: the best usable fit of them wins.
BOXES_ON_RANGE: dict[str, tuple[Law, ...]] = {"vanilla": (VANILLA, VANILLA_ON_RANGE)}
