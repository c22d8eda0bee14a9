"""Per-model facts beyond the loss curve, as the probes write them and the selectors read them.

`NtkTerm` is LensLLM's NTK term of one model on one benchmark (measured by `lensllm.probes.ntk`):
the spectrum lambda_k of the empirical NTK Theta and the residual's projections c_k = u_k . r0, so

    F(t) = || exp(-eta Theta t) r0 ||^2 = sum_k exp(-2 eta lambda_k t) c_k^2

is evaluated at any t. `WeightMetrics` are a model's NLPmetrics (measured by
`lensllm.probes.spectra`): the mean power-law exponent alpha of its weight matrices' spectra and its
weighted variant. Both are small JSON records, one per job; numpy only, so that the analysing half
reads them without torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from lensllm.atomic import write_json

Record = TypeVar("Record")


def read_record(path: str | os.PathLike, build: Callable[[dict[str, Any]], Record], what: str) -> Record:
    """Read a JSON record and `build` it, naming the file and what it should be when it is not one."""
    try:
        return build(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not {what}: {err}") from err


@dataclass(frozen=True)
class NtkTerm:
    """The spectrum of Theta, the residual in its eigenbasis, eta, and the cost of measuring them."""

    model: str
    benchmark: str
    eta: float
    eigenvalues: tuple[float, ...]
    projections: tuple[float, ...]
    residuals: tuple[float, ...]
    n_probes: int
    seed: int
    params_total: int
    params_used: int
    first_param_used: str
    flops: float
    seconds: float
    load_seconds: float = 0.0
    device: str = "cpu"
    precision: str = "fp32"

    def f(self, t) -> np.ndarray:
        """F(t) = sum_k exp(-2 eta lambda_k t) (u_k . r0)^2, at one or many t >= 0."""
        return ntk_f(np.asarray(self.eigenvalues), np.asarray(self.projections), self.eta, t)

    def t_for(self, f_value: float, t_max: float) -> float:
        """The t in [0, t_max] with F(t) = f_value (bisection: F is non-increasing)."""
        lo, hi = 0.0, float(t_max)
        if f_value >= float(self.f(lo)):
            return lo
        if f_value <= float(self.f(hi)):
            return hi
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if float(self.f(mid)) > f_value else (lo, mid)
        return 0.5 * (lo + hi)


def ntk_f(eigenvalues: np.ndarray, projections: np.ndarray, eta: float, t) -> np.ndarray:
    """F(t) = sum_k exp(-2 eta lambda_k t) c_k^2 for eigenvalues lambda_k >= 0 and projections c_k."""
    t = np.asarray(t, dtype=float)
    decay = np.exp(-2.0 * eta * np.multiply.outer(t, np.maximum(eigenvalues, 0.0)))
    return decay @ np.square(projections)


def ntk_summary(term: NtkTerm) -> dict[str, Any]:
    """One row of the run's NTK table: size of the problem, spectrum, F(0) and cost."""
    eigenvalues = np.asarray(term.eigenvalues)
    return {
        "benchmark": term.benchmark,
        "model": term.model,
        "n_probes": term.n_probes,
        "params_used": term.params_used,
        "params_total": term.params_total,
        "trace": float(eigenvalues.sum()),
        "lambda_max": float(eigenvalues.max()),
        "lambda_min": float(eigenvalues.min()),
        "mean_loss": -float(np.mean(term.residuals)),
        "F0": float(term.f(0.0)),
        "eta": term.eta,
        "flops": term.flops,
        "seconds": term.seconds,
        "load_seconds": term.load_seconds,
    }


def write_ntk(term: NtkTerm, path: str | os.PathLike) -> None:
    """Write an NTK term as JSON, atomically."""
    write_json(asdict(term), path)


def read_ntk(path: str | os.PathLike) -> NtkTerm:
    """Read an NTK term written by `write_ntk`, naming the file when it is not one."""

    def build(record: dict[str, Any]) -> NtkTerm:
        for key in ("eigenvalues", "projections", "residuals"):
            record[key] = tuple(record[key])
        return NtkTerm(**record)

    return read_record(path, build, "an NTK term written by lensllm.probes.ntk")


@dataclass(frozen=True)
class PowerLawFit:
    """A power-law fit of one spectrum's tail: exponent, lower cut-off, KS distance, tail size."""

    alpha: float
    lambda_min: float
    ks_distance: float
    n_tail: int
    lambda_max: float


@dataclass(frozen=True)
class WeightMetrics:
    """A model's NLPmetrics: mean alpha, mean weighted alpha, and each layer's fit."""

    model: str
    alpha: float
    alpha_weighted: float
    layers: tuple[tuple[str, PowerLawFit], ...]
    flops: float
    seconds: float


def weights_summary(metrics: WeightMetrics) -> dict[str, float | int | str]:
    """One row of the run's weight-metrics table."""
    return {
        "model": metrics.model,
        "alpha": metrics.alpha,
        "alpha_weighted": metrics.alpha_weighted,
        "n_layers": len(metrics.layers),
        "flops": metrics.flops,
        "seconds": metrics.seconds,
    }


def write_weight_metrics(metrics: WeightMetrics, path: str | os.PathLike) -> None:
    """Write a model's weight metrics as JSON, atomically."""
    write_json(asdict(metrics), path)


def read_weight_metrics(path: str | os.PathLike) -> WeightMetrics:
    """Read weight metrics written by `write_weight_metrics`, naming the file when they are not."""

    def build(record: dict[str, Any]) -> WeightMetrics:
        record["layers"] = tuple((layer, PowerLawFit(**fit)) for layer, fit in record["layers"])
        return WeightMetrics(**record)

    return read_record(path, build, "weight metrics written by lensllm.probes.spectra")
