"""A benchmark's examples as token rows and padded batches, and the loss on their target tokens.

The sequence format (which tokens carry a label, how source and target are truncated) is described
in `lensllm.training.finetune`'s docstring; a row is (input ids, labels), -100 where no loss is taken.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy imports stay lazy so that the command lines start fast
    import torch
    from transformers import PreTrainedModel

    from lensllm.data.benchmark import Benchmark, Example
    from lensllm.training.loading import LoadedModel
    from lensllm.training.settings import FinetuneConfig


def encode_examples(
    examples: Sequence[Example], loaded: LoadedModel, kind: str, config: FinetuneConfig
) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) of each example, as described in `lensllm.training.finetune`'s docstring.

    For causal models labels are aligned with the inputs (-100 where no loss is taken; the model
    shifts them); for encoder-decoder models the inputs go to the encoder and labels are the
    decoder targets.
    """
    tokenizer = loaded.tokenizer
    eos = tokenizer.eos_token_id
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos

    def ids(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

    sources = ids([ex.source for ex in examples]) if kind == "pairs" else [[] for _ in examples]
    targets = ids([ex.target for ex in examples])
    separator = ids(["\n"])[0] if kind == "pairs" else []
    encoded = []
    for source, target in zip(sources, targets):
        source, target = source[: config.max_len_source], target[: config.max_len_target] + [eos]
        if loaded.is_encoder_decoder:
            encoded.append((source + [eos], target))
        else:
            prefix = [bos] + source + separator
            encoded.append((prefix + target, [-100] * len(prefix) + target))
    return encoded


def collate_rows(rows: Sequence[tuple[list[int], list[int]]], pad: int, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Right-pad (inputs, labels) rows: inputs with `pad` and mask 0, labels with -100; on `device`."""
    import torch

    width_in = max(len(inputs) for inputs, _ in rows)
    width_out = max(len(labels) for _, labels in rows)
    input_ids = torch.full((len(rows), width_in), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width_in), dtype=torch.long)
    labels = torch.full((len(rows), width_out), -100, dtype=torch.long)
    for row, (inputs, targets) in enumerate(rows):
        input_ids[row, : len(inputs)] = torch.tensor(inputs)
        attention_mask[row, : len(inputs)] = 1
        labels[row, : len(targets)] = torch.tensor(targets)
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    return batch if device == "cpu" else {k: v.to(device) for k, v in batch.items()}


def token_loss(model: PreTrainedModel, batch: dict[str, torch.Tensor], encoder_decoder: bool) -> tuple[torch.Tensor, int]:
    """(summed cross-entropy over the labelled tokens, their number) for one batch."""
    import torch

    logits, labels = _logits_and_labels(model, batch, encoder_decoder)
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100, reduction="sum"
    )
    return loss, labelled_tokens(batch, encoder_decoder)


def example_losses(model: PreTrainedModel, batch: dict[str, torch.Tensor], encoder_decoder: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed cross-entropy of each example over its labelled tokens, their number per example)."""
    import torch

    logits, labels = _logits_and_labels(model, batch, encoder_decoder)
    losses = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100, reduction="none")
    return losses.sum(dim=1), (labels != -100).sum(dim=1)


def _logits_and_labels(model: PreTrainedModel, batch: dict[str, torch.Tensor], encoder_decoder: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits of one batch aligned with its labels: the decoder's for encoder-decoder models,
    shifted by one position (the next token) for causal ones."""
    labels = batch["labels"]
    if encoder_decoder:
        decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels=labels)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       decoder_input_ids=decoder_input_ids).logits
        return logits, labels
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return logits[:, :-1], labels[:, 1:]


def labelled_tokens(batch: dict[str, torch.Tensor], encoder_decoder: bool) -> int:
    """The number of target tokens of a batch that the loss is taken on."""
    labels = batch["labels"] if encoder_decoder else batch["labels"][:, 1:]
    return int((labels != -100).sum())


def batch_positions(batch: dict[str, torch.Tensor], encoder_decoder: bool) -> int:
    """Token positions a training step computes: inputs (+ decoder targets for encoder-decoder)."""
    return batch["input_ids"].numel() + (batch["labels"].numel() if encoder_decoder else 0)


def add_benchmark_options(parser: argparse.ArgumentParser) -> None:
    """The options of a command line that encodes a benchmark's examples: --benchmark, and the
    truncation of `encode_examples`, --max-len-source and --max-len-target (`FinetuneConfig`'s defaults)."""
    from lensllm.training.settings import FinetuneConfig

    defaults = FinetuneConfig()
    parser.add_argument("--benchmark", required=True, help="benchmark file written by lensllm.data.benchmark")
    parser.add_argument("--max-len-source", type=int, default=defaults.max_len_source)
    parser.add_argument("--max-len-target", type=int, default=defaults.max_len_target)


def read_benchmark_option(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Benchmark:
    """The benchmark of --benchmark, or the command line's usage error when there is no such file."""
    if not Path(args.benchmark).is_file():
        parser.error(f"--benchmark {args.benchmark}: no such file")
    from lensllm.data.benchmark import read_benchmark

    return read_benchmark(args.benchmark)
