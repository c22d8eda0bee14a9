"""A fine-tuning job's settings (`FinetuneConfig`) and its record (`FinetuneResult`, written as JSON).

What the fields mean, and how the job computes them, is in `lensllm.training.finetune`'s docstring.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from lensllm.atomic import atomic_path
from lensllm.training.device import DEVICE_PATTERN, PRECISIONS

PAD_CHOICES = ("eos",)
METHODS = ("full", "lora")


class JobConfigError(ValueError):
    """A setting the job cannot run with (device, precision, LoRA modules, GPU memory); the message
    names the configuration key."""


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters of one fine-tuning job (all recorded in the result JSON).

    `warmup` is the fraction of optimizer steps with a linearly increasing learning rate;
    `pad_token="eos"` lets a tokenizer without a pad token pad with its eos token (padding is
    masked out of the loss either way); `threads` is passed to `torch.set_num_threads`.

    The defaults (lr 1e-3, 3 epochs, batch 16) were tuned on the default zoo with the sizes
    0 16 32 ... 512 (one job = 3 passes over 1008 examples): a higher rate (1.5e-3, 3e-3) gives
    higher losses and non-monotone curves (the first steps at a re-heated rate undo pre-training);
    with them the best zero-shot model is overtaken on debsum and instruct (see config/README.md).
    """

    lr: float = 1e-3
    epochs: int = 3
    batch_size: int = 16
    max_len_source: int = 48
    max_len_target: int = 64
    seed: int = 0
    weight_decay: float = 0.0
    warmup: float = 0.1
    eval_batch_size: int = 64
    flop_batches: int = 2
    threads: int = 1
    pad_token: str | None = None
    hessian_probes: int = 8
    hessian_examples: int = 16
    bound_batches: int = 1
    device: str = "auto"
    precision: str = "fp32"
    micro_batch_size: int | None = None
    method: str = "full"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_target_modules: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(f"fine-tuning config: lr > 0, epochs >= 1 and batch sizes >= 1 are required, got {self}")
        if self.max_len_source < 1 or self.max_len_target < 1 or not 0 <= self.warmup < 1:
            raise ValueError(f"fine-tuning config: max lengths >= 1 and 0 <= warmup < 1 are required, got {self}")
        if self.hessian_probes < 0 or self.hessian_examples < 1:
            raise ValueError(f"fine-tuning config: hessian_probes >= 0 and hessian_examples >= 1 are required, got {self}")
        if self.bound_batches < 0:
            raise ValueError(f"finetune.bound_batches: must be >= 0 (0 skips the Hessian distance), got {self.bound_batches}")
        if self.pad_token is not None and self.pad_token not in PAD_CHOICES:
            raise ValueError(f"fine-tuning config: pad_token must be None or one of {PAD_CHOICES}, got {self.pad_token!r}")
        if self.micro_batch_size is not None and not 1 <= self.micro_batch_size <= self.batch_size:
            raise ValueError(f"finetune.micro_batch_size: must be between 1 and finetune.batch_size ({self.batch_size}), "
                             f"got {self.micro_batch_size}")
        if not DEVICE_PATTERN.match(str(self.device)):
            raise ValueError(f"finetune.device: unknown device {self.device!r}; use auto, cpu, cuda, cuda:N or mps")
        if self.method not in METHODS:
            raise ValueError(f"finetune.method: unknown method {self.method!r}; use one of {', '.join(METHODS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"finetune.precision: unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.lora_rank < 1 or self.lora_alpha <= 0:
            raise ValueError(f"finetune.lora_rank >= 1 and finetune.lora_alpha > 0 are required, got "
                             f"{self.lora_rank} and {self.lora_alpha}")


@dataclass(frozen=True)
class FinetuneResult:
    """The outcome of one job; its fields are the keys of the result JSON.

    `train_loss_final` is the mean batch loss of the last epoch (None for size 0), `test_tokens`
    the number of target tokens behind `test_loss`, `tokens_seen` the training token positions,
    `hessian_trace` Hutchinson's estimate of tr(H) of the training loss (see `lensllm.training.finetune`).
    `train_loss` and `train_loss_max` are the mean per-token loss of the fine-tuned model on its
    training examples and the largest per-example loss among them (Lhat and C of the bound),
    `hessian_distance` sum_i H_i and `hessian_distance_per_matrix` each H_i (`lensllm.training.hessian`;
    all None for size 0 or with `bound_batches: 0`).
    `device`, `precision` and `gpu_name` say where it ran, `micro_batch_size` the micro-batch the
    steps ran with (after any halving), `energy_joules` the joules it used (NVML + RAPL; null where
    neither counter is readable, split into `energy_gpu_joules` and `energy_cpu_joules`).
    """

    model: str
    model_path: str
    benchmark: str
    kind: str
    size: int
    seed: int
    is_encoder_decoder: bool
    test_loss: float
    test_tokens: int
    train_loss_final: float | None
    steps: int
    tokens_seen: int
    n_params: int
    n_params_matmul: int
    flops_measured: float
    flops_analytic: float
    flops_per_token_measured: float
    hessian_trace: float | None
    hessian_trace_stderr: float | None
    hessian_seconds: float | None
    wall_seconds: float
    config: dict[str, Any]
    versions: dict[str, str]
    device: str = "cpu"
    precision: str = "fp32"
    gpu_name: str | None = None
    method: str = "full"
    micro_batch_size: int | None = None
    n_params_trainable: int | None = None
    energy_joules: float | None = None
    energy_gpu_joules: float | None = None
    energy_cpu_joules: float | None = None
    train_loss: float | None = None
    train_loss_max: float | None = None
    hessian_distance: float | None = None
    hessian_distance_per_matrix: dict[str, float] | None = None
    hessian_distance_batches: int | None = None
    hessian_distance_seconds: float | None = None


def write_result_json(result: FinetuneResult, path: str | os.PathLike) -> None:
    """Write `result` as JSON to `path` atomically (temp file beside it, then `os.replace`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(asdict(result), indent=2) + "\n")
