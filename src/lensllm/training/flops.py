"""FLOP counting: the FLOPs of forward + backward measured per token position, and the parameters
that take part in matrix products.

`measure_flops_per_token` counts with `torch.utils.flop_counter.FlopCounterMode` (eager attention);
`matmul_params` is the N of the analytic count 6 * N * tokens: every parameter outside the embedding
tables (`non_embedding_params`), plus the output projection, counted even when tied to the input
embedding since its product is computed. `lensllm.training.finetune`'s docstring says how the job
uses them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lensllm.training.tokens import batch_positions, token_loss

if TYPE_CHECKING:  # heavy imports stay lazy so that the command lines start fast
    import torch
    from transformers import PreTrainedModel


def non_embedding_params(module: torch.nn.Module) -> int:
    """Parameters outside every `nn.Embedding` table of `module` (a tied output head is thus excluded)."""
    embedding = _embedding_parameters(module)
    return sum(p.numel() for p in module.parameters() if id(p) not in embedding)


def matmul_params(model: PreTrainedModel) -> int:
    """Parameters used in matrix products: all outside `nn.Embedding` tables, plus the output head."""
    head = model.get_output_embeddings().weight
    return non_embedding_params(model) + (head.numel() if id(head) in _embedding_parameters(model) else 0)


def _embedding_parameters(module: torch.nn.Module) -> set[int]:
    """The ids of the parameters of every `nn.Embedding` table in `module`."""
    import torch

    return {id(p) for m in module.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}


def measure_flops_per_token(model: PreTrainedModel, batches: Sequence[dict[str, torch.Tensor]],
                            encoder_decoder: bool, precision=None, device: str = "cpu") -> float:
    """FLOPs per token position of forward + backward on `batches`, counted with eager attention,
    on the device of the batches under the autocast of `precision` (None: fp32).

    The gradients are discarded: the weights are unchanged.
    """
    from torch.utils.flop_counter import FlopCounterMode

    original = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with FlopCounterMode(display=False) as counter:
            for batch in batches:
                with precision.autocast(device) if precision else contextlib.nullcontext():
                    loss_sum, count = token_loss(model, batch, encoder_decoder)
                (loss_sum / max(1, count)).backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.set_attn_implementation(original)
    return counter.get_total_flops() / sum(batch_positions(batch, encoder_decoder) for batch in batches)
