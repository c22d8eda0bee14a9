"""NLPmetrics: heavy-tailed self-regularisation metrics of the pre-trained weights.

Each weight matrix W (N x M, N >= M after transposing) of a linear layer has the empirical spectral
density of its correlation matrix X = W^T W, i.e. the eigenvalues lambda_i = sigma_i^2 (squared
singular values of W). Its tail is fitted with a power law p(lambda) ~ lambda^(-alpha) for
lambda >= lambda_min by the method of Clauset, Shalizi and Newman (2009), the estimator of the
`powerlaw` package that weightwatcher uses:

- for every candidate lambda_min among the eigenvalues (leaving at least `min_tail` in the tail),
  the maximum-likelihood exponent  alpha = 1 + n / sum_i ln(lambda_i / lambda_min)  over the n
  tail eigenvalues;
- lambda_min is the candidate whose fitted tail CDF  P(x) = 1 - (x / lambda_min)^(1 - alpha)  is
  closest to the empirical tail CDF in the Kolmogorov-Smirnov distance D = max_i |i/n - P(x_i)|
  over the sorted tail x_0 <= ... <= x_(n-1) (the `powerlaw` package's convention).

With these conventions and `min_tail` = 5 the exponents equal weightwatcher 0.7.7's layer by layer
(`tests/unit/test_spectra.py` checks it whenever weightwatcher is installed, as `make test` does).

Per model: `alpha` = the mean of the layers' alpha, and `alpha_weighted` = the mean of
alpha * log10(lambda_max) (weightwatcher's "alpha-hat"). Well-trained layers have alpha between 2 and
6; a random Gaussian matrix has the Marchenko-Pastur bulk, whose steep edge gives a large alpha. The
NLPMetrics selector ranks models by the metric, lower is better (Yang et al., 2023). The layers:
every 2-D weight of a linear (or GPT-2 Conv1D) layer with both sides at least `min_side`; embedding
tables, and the output head tied to them, are left out. We implement the estimator here (a page of
numpy) instead of depending on weightwatcher at run time: it would bring scikit-learn, powerlaw and
five more packages for these forty lines.

`--device` (the workflow passes `ntk.device`): the singular values are computed there by
`torch.linalg.svdvals` in float64 (a GPU makes the large layers of 7B-class models fast); on the
CPU, by numpy as above.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lensllm.curves.terms import PowerLawFit, WeightMetrics, write_weight_metrics
from lensllm.training.cli import exit_on_error
from lensllm.training.device import add_gpu_slot_options, claim_gpu_slot_option
from lensllm.training.loading import add_model_options

if TYPE_CHECKING:
    from transformers import PreTrainedModel

MIN_TAIL = 5
MIN_SIDE = 16


def fit_power_law(eigenvalues, min_tail: int = MIN_TAIL) -> PowerLawFit:
    """Clauset-Shalizi-Newman fit of the tail of `eigenvalues` (see the module docstring)."""
    values = np.sort(np.asarray(eigenvalues, dtype=float))
    values = values[values > 0]
    if len(values) < min_tail:
        raise ValueError(f"a power-law fit needs at least {min_tail} positive eigenvalues, got {len(values)}")
    logs = np.log(values)
    best = None
    for start in range(len(values) - min_tail + 1):
        tail = logs[start:] - logs[start]
        n = len(tail)
        total = tail.sum()
        if total <= 0:
            continue
        alpha = 1.0 + n / total
        fitted = 1.0 - np.exp((1.0 - alpha) * tail)  # model CDF at each tail point
        distance = float(np.max(np.abs(np.arange(n) / n - fitted)))
        if best is None or distance < best.ks_distance:
            best = PowerLawFit(float(alpha), float(values[start]), distance, n, float(values[-1]))
    if best is None:
        raise ValueError("the spectrum has no tail with distinct eigenvalues to fit")
    return best


def spectrum(weight: np.ndarray, device: str = "cpu") -> np.ndarray:
    """The eigenvalues of W^T W (squared singular values of W), ascending, in float64 (numpy, or
    `torch.linalg.svdvals` on a CUDA device)."""
    if not device.startswith("cuda"):  # the CPU, and MPS (no float64 there)
        return np.sort(np.linalg.svd(np.asarray(weight, dtype=np.float64), compute_uv=False) ** 2)
    import torch

    values = torch.linalg.svdvals(torch.as_tensor(np.asarray(weight), device=device).double())
    return np.sort(values.cpu().numpy() ** 2)


def layer_weights(model: PreTrainedModel, min_side: int = MIN_SIDE) -> list[tuple[str, np.ndarray]]:
    """The 2-D weights of linear layers (nn.Linear, GPT-2's Conv1D), embeddings and tied heads excluded."""
    import torch
    from transformers.pytorch_utils import Conv1D

    embedding = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Linear, Conv1D)) and id(module.weight) not in embedding:
            weight = module.weight.detach().float().numpy()
            if min(weight.shape) >= min_side:
                layers.append((name, weight))
    return layers


def weight_metrics(name: str, layers: Sequence[tuple[str, np.ndarray]], min_tail: int = MIN_TAIL,
                   device: str = "cpu") -> WeightMetrics:
    """Fit every layer's spectrum (computed on `device`); alpha and alpha_weighted are the means over layers."""
    start = time.perf_counter()
    if not layers:
        raise ValueError(f"model {name!r}: no linear layer with both sides >= {MIN_SIDE} to measure")
    fits = tuple((layer, fit_power_law(spectrum(w, device), min(min_tail, min(w.shape)))) for layer, w in layers)
    alphas = np.array([f.alpha for _, f in fits])
    weighted = np.array([f.alpha * np.log10(f.lambda_max) for _, f in fits])
    flops = float(sum(4.0 * max(w.shape) * min(w.shape) ** 2 for _, w in layers))  # SVD, singular values only
    return WeightMetrics(name, float(alphas.mean()), float(weighted.mean()), fits, flops, round(time.perf_counter() - start, 3))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: load a model, measure its weight spectra, write the metrics JSON."""
    from lensllm.training.device import resolve_device
    from lensllm.training.loading import load_model

    parser = argparse.ArgumentParser(prog="python -m lensllm.probes.spectra", description=__doc__.splitlines()[0])
    add_model_options(parser)
    parser.add_argument("--out", required=True, help="the metrics JSON to write")
    parser.add_argument("--device", default="cpu", help="where the SVDs run: auto, cpu, cuda, cuda:N, mps (ntk.device)")
    add_gpu_slot_options(parser)
    args = parser.parse_args(argv)
    slot = claim_gpu_slot_option(parser, args)  # noqa: F841 (before torch starts CUDA; the lock is held while `slot` lives)
    with exit_on_error(ValueError):  # ModelLoadError included
        device = resolve_device(args.device, "ntk.device")
        loaded = load_model(args.model, pad_token=args.pad_token, name=args.model_name, gguf_file=args.gguf_file,
                            revision=args.revision)
    metrics = weight_metrics(loaded.name, layer_weights(loaded.model), device=device)
    write_weight_metrics(metrics, args.out)
    print(f"{metrics.model}: {len(metrics.layers)} layers, alpha {metrics.alpha:.3f}, "
          f"weighted alpha {metrics.alpha_weighted:.3f} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
