"""What a fine-tuning job measures on its model besides training: the test loss, the training losses
of the PAC-Bayes bound, and the Hessian trace and distance (`lensllm.training.hessian`) of the loss.

The definitions (which examples, which mode, which attention) are in `lensllm.training.finetune`'s
docstring.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from lensllm.training.tokens import collate_rows, example_losses, labelled_tokens, token_loss

if TYPE_CHECKING:  # heavy imports stay lazy so that the command lines start fast
    import torch
    from transformers import PreTrainedModel

    from lensllm.training.hessian import HessianDistance, HessianTrace


def evaluate(model: PreTrainedModel, rows: Sequence[tuple[list[int], list[int]]], pad: int,
             batch_size: int, encoder_decoder: bool, precision=None, device: str = "cpu") -> tuple[float, int]:
    """(mean per-token test cross-entropy, number of target tokens), batches sorted by length,
    on `device` under the autocast of `precision` (None: fp32)."""
    import torch

    model.eval()
    rows = sorted(rows, key=lambda row: (len(row[0]), len(row[1])))
    total, count = 0.0, 0
    with torch.no_grad(), (precision.autocast(device) if precision else contextlib.nullcontext()):
        for i in range(0, len(rows), batch_size):
            loss_sum, n = token_loss(model, collate_rows(rows[i:i + batch_size], pad, device), encoder_decoder)
            total += float(loss_sum)
            count += n
    model.train()
    return total / count, count


def training_losses(model: PreTrainedModel, rows: Sequence[tuple[list[int], list[int]]], pad: int, batch_size: int,
                    encoder_decoder: bool, precision=None, device: str = "cpu") -> tuple[float, float]:
    """(mean per-token loss over all of `rows`' target tokens, the largest per-example mean per-token
    loss): Lhat and C of the bound, for the fine-tuned model on its own training examples; batches
    sorted by length, as the test evaluation's."""
    import torch

    rows = sorted(rows, key=lambda row: (len(row[0]), len(row[1])))
    total, count, largest = 0.0, 0, -math.inf
    model.eval()
    with torch.no_grad(), (precision.autocast(device) if precision else contextlib.nullcontext()):
        for i in range(0, len(rows), batch_size):
            batch = collate_rows(rows[i:i + batch_size], pad, device)
            sums, tokens = example_losses(model, batch, encoder_decoder)
            total += float(sums.sum())
            count += int(tokens.sum())
            largest = max(largest, float((sums / tokens.clamp(min=1)).max()))
    model.train()
    return total / count, largest


def loss_hessian_trace(model: PreTrainedModel, rows: Sequence[tuple[list[int], list[int]]], pad: int,
                       batch_size: int, encoder_decoder: bool, probes: int, seed: int, precision=None,
                       device: str = "cpu") -> HessianTrace:
    """Hutchinson's tr(H) of the mean per-token loss on `rows`, w.r.t. every trainable parameter.

    Eval mode (no dropout) and eager attention (double backward through every attention kernel),
    on `device` with the forward passes under the autocast of `precision` (None: fp32); the
    model is left as it was found.
    """
    from lensllm.training.hessian import hutchinson_trace

    batches = [collate_rows(rows[i:i + batch_size], pad, device) for i in range(0, len(rows), batch_size)]
    total = sum(labelled_tokens(batch, encoder_decoder) for batch in batches)
    params = [p for p in model.parameters() if p.requires_grad]
    with _double_backward_mode(model):
        return hutchinson_trace((_summed_loss(model, batch, encoder_decoder, precision, device) / total for batch in batches),
                                params, probes, seed)


def loss_hessian_distance(model: PreTrainedModel, batches: Sequence[Sequence[tuple[list[int], list[int]]]], pad: int,
                          encoder_decoder: bool, start: Mapping[str, torch.Tensor], precision=None,
                          device: str = "cpu") -> HessianDistance:
    """Ju et al.'s H_i of each weight matrix in `start` (name -> W_i^s), along W_i - W_i^s, of the
    mean per-token loss of each batch of rows, maximised over `batches` (`lensllm.training.hessian`); eval
    mode and eager attention, like the trace."""
    from lensllm.training.hessian import hessian_distance

    matrices = {name: p for name, p in model.named_parameters() if name in start}
    directions = {name: (p.detach() - start[name]) for name, p in matrices.items()}

    def losses():
        for rows in batches:
            batch = collate_rows(rows, pad, device)
            yield _summed_loss(model, batch, encoder_decoder, precision, device) / labelled_tokens(batch, encoder_decoder)

    with _double_backward_mode(model):
        return hessian_distance(losses(), matrices, directions)


def _summed_loss(model: PreTrainedModel, batch: dict[str, torch.Tensor], encoder_decoder: bool, precision, device: str) -> torch.Tensor:
    """`token_loss`'s sum, under the autocast of `precision` (None: fp32)."""
    if precision is None:
        return token_loss(model, batch, encoder_decoder)[0]
    with precision.autocast(device):
        return token_loss(model, batch, encoder_decoder)[0]


@contextlib.contextmanager
def _double_backward_mode(model: PreTrainedModel):
    """Eval mode (no dropout) and eager attention (double backward through every attention kernel);
    the model is left as it was found, without gradients."""
    original, was_training = model.config._attn_implementation, model.training
    model.set_attn_implementation("eager")
    model.eval()
    try:
        yield
    finally:
        model.zero_grad(set_to_none=True)
        model.set_attn_implementation(original)
        model.train(was_training)
