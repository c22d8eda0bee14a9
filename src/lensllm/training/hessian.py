"""The trace of the Hessian of the fine-tuning loss, estimated with Hutchinson's method.

For a loss L(w) over parameters w with Hessian H, and random vectors v with E[v v^T] = I
(Rademacher: each entry +1 or -1 with probability 1/2),

    tr(H) = E[v^T H v]  ~  (1/m) sum_k v_k^T H v_k,

each term one Hessian-vector product H v = d/dw (grad L . v) (double backward, no Hessian is
formed). The standard error of the estimate is the sample standard deviation of the m terms over
sqrt(m). The loss is a sum over batches, so H v is accumulated batch by batch with the same v (each
v is regenerated per batch from its own seeded generator instead of being stored: a model of 135M
parameters would otherwise hold m vectors of its size).

LensLLM's theory places the phase transition of the fine-tuning curve where this curvature settles:
large in the pre-power phase, flat in the power phase. The fine-tuning job records it at the
pre-trained weights (size 0) and after each fine-tune, always on the same probe examples.

`hessian_distance` measures the other Hessian quantity of LensLLM's theory, the one in Ju, Li and
Zhang's (ICML 2022) PAC-Bayes bound: for each weight matrix, the quadratic form of its Hessian block
along the distance the fine-tune moved it, maximised over training batches (`lensllm.probes.bound` turns
it into the bound's terms).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class HessianTrace:
    """Hutchinson's estimate of tr(H): the mean of `probes` terms v^T H v and its standard error."""

    trace: float
    stderr: float
    probes: int
    seconds: float


def rademacher_like(params: Sequence[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """One Rademacher vector shaped like `params` (entries +-1), from a CPU generator seeded with `seed`
    (the same vector on every device), placed on the parameters' devices."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return [
        torch.randint(0, 2, p.shape, generator=generator, dtype=torch.int8).to(device=p.device, dtype=p.dtype).mul_(2).sub_(1)
        for p in params
    ]


def hutchinson_trace(
    batch_losses: Iterable[torch.Tensor],
    params: Sequence[torch.Tensor],
    probes: int,
    seed: int = 0,
) -> HessianTrace:
    """Estimate tr(H) of  L = sum of the losses in `batch_losses`, w.r.t. `params`.

    `batch_losses` yields the loss terms (each a scalar with a graph to `params`), one batch at a
    time; probe k uses the seed ``seed + k`` in every batch, so the estimate is reproducible.
    """
    import time

    import torch

    if probes < 1:
        raise ValueError(f"Hutchinson's estimate needs at least one probe vector, got {probes}")
    start = time.perf_counter()
    terms = [0.0] * probes
    for loss in batch_losses:
        grads = torch.autograd.grad(loss, params, create_graph=True)
        for k in range(probes):
            v = rademacher_like(params, seed + k)
            hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=k < probes - 1)
            terms[k] += float(sum(torch.sum(a.double() * b.double()) for a, b in zip(v, hv)))
    mean = sum(terms) / probes
    spread = math.sqrt(sum((x - mean) ** 2 for x in terms) / (probes - 1)) if probes > 1 else float("nan")
    return HessianTrace(mean, spread / math.sqrt(probes), probes, round(time.perf_counter() - start, 3))


@dataclass(frozen=True)
class HessianDistance:
    """Ju et al.'s Hessian distance of a fine-tune, one value per weight matrix W_i:

        H_i = max over batches b of  v_i^T [Hessian of loss_b w.r.t. W_i] v_i,   v_i = vec(W_i - W_i^s),

    with W_i^s the pre-trained matrix. `per_matrix` maps each matrix's name to H_i, `batches` is the
    number of batches maximised over.
    """

    per_matrix: dict[str, float]
    batches: int
    seconds: float

    @property
    def total(self) -> float:
        """sum_i H_i, the Hessian distance that enters the bound (see `lensllm.probes.bound`)."""
        return float(sum(self.per_matrix.values()))


def hessian_distance(
    batch_losses: Iterable[torch.Tensor],
    matrices: Mapping[str, torch.Tensor],
    directions: Mapping[str, torch.Tensor],
) -> HessianDistance:
    """H_i of every matrix in `matrices` along `directions[name]` (= W_i - W_i^s), maximised over
    the losses `batch_losses` yields (each a scalar with a graph to the matrices).

    Per batch: one gradient with its graph, then for each matrix one Hessian-vector product
    restricted to it, d/dW_i (grad_i loss . v_i), whose inner product with v_i is the quadratic form
    of the Hessian block of W_i (no Hessian is formed). A matrix the loss is linear in has H_i = 0.
    """
    import time

    import torch

    start = time.perf_counter()
    names, params = list(matrices), list(matrices.values())
    best = dict.fromkeys(names, -math.inf)
    batches = 0
    for loss in batch_losses:
        grads = torch.autograd.grad(loss, params, create_graph=True)
        for k, (name, param, grad) in enumerate(zip(names, params, grads)):
            value = 0.0
            if grad.requires_grad:
                direction = directions[name].to(device=param.device, dtype=param.dtype)
                (hv,) = torch.autograd.grad(grad, param, grad_outputs=direction, retain_graph=k < len(params) - 1,
                                            allow_unused=True)
                value = 0.0 if hv is None else float(torch.sum(direction.double() * hv.double()))
            best[name] = max(best[name], value)
        batches += 1
    if not batches:
        raise ValueError("the Hessian distance needs at least one batch")
    return HessianDistance(best, batches, round(time.perf_counter() - start, 3))
