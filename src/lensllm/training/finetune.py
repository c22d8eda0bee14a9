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

Curvature: `hessian_trace` is Hutchinson's estimate (`lensllm.training.hessian`, `hessian_probes` Rademacher
vectors, seeded with `seed`) of the trace of the Hessian of the mean per-token training loss on the
first `hessian_examples` training examples of the benchmark's seeded order, the same examples for
every size, with the model in eval mode and eager attention; at the pre-trained weights for size 0,
after fine-tuning otherwise. `hessian_probes: 0` skips it (the fields are then null).

The PAC-Bayes bound (`lensllm.probes.bound`): after a fine-tune of size > 0 the job measures the training
loss of the fine-tuned model on its own examples (`train_loss`, per token like the test loss) and
the largest per-example training loss (`train_loss_max`, the bound's C), and Ju et al.'s Hessian
distance H_i of every trainable weight matrix (`lensllm.training.hessian.hessian_distance`) along its
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
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from lensllm.training.cli import exit_on_error
from lensllm.training.device import PRECISIONS, add_gpu_slot_options, claim_gpu_slot_option
from lensllm.training.evaluation import evaluate, loss_hessian_distance, loss_hessian_trace, training_losses
from lensllm.training.flops import matmul_params, measure_flops_per_token
from lensllm.training.loading import LoadedModel, ModelLoadError, add_model_options, apply_lora, load_model
from lensllm.training.settings import (
    METHODS,
    FinetuneConfig,
    FinetuneResult,
    JobConfigError,
    write_result_json,
)
from lensllm.training.tokens import (
    add_benchmark_options,
    batch_positions,
    collate_rows,
    encode_examples,
    labelled_tokens,
    read_benchmark_option,
    token_loss,
)

if TYPE_CHECKING:  # heavy imports stay lazy so that the command line starts fast
    import torch
    from transformers import PreTrainedModel

    from lensllm.data.benchmark import Benchmark
    from lensllm.training.device import EnergyReading, Precision

T = TypeVar("T")


@dataclass
class _Job:
    """What the steps of one fine-tune share: the model (with its LoRA adapters), where and how it
    computes, its pad id, and the micro-batch size of its steps (`micro`, halved on an accelerator's
    out-of-memory error when `auto_micro`)."""

    loaded: LoadedModel
    config: FinetuneConfig
    device: str
    precision: Precision
    pad: int
    micro: int
    auto_micro: bool

    @property
    def model(self) -> PreTrainedModel:
        return self.loaded.model

    @property
    def encoder_decoder(self) -> bool:
        return self.loaded.is_encoder_decoder

    def halve(self, err: RuntimeError) -> None:
        """On an accelerator's out-of-memory error with automatic micro-batches: halve them."""
        import torch

        from lensllm.training.device import is_out_of_memory

        if not self.auto_micro or self.micro == 1 or not is_out_of_memory(err):
            raise err
        self.model.zero_grad(set_to_none=True)
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
        self.micro = max(1, self.micro // 2)
        print(f"out of memory: micro-batch halved to {self.micro}", file=sys.stderr)

    def with_micro_batches(self, step: Callable[[int], T]) -> T:
        """`step(micro)`, again with half the micro-batch after each out-of-memory error (`halve`)."""
        while True:
            try:
                return step(self.micro)
            except RuntimeError as err:
                self.halve(err)


@dataclass(frozen=True)
class _Training:
    """What the training loop did: its optimizer steps, the token positions it computed, and the
    batch losses of its last epoch."""

    steps: int
    tokens_seen: int
    last_epoch_losses: list[float]


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

    from lensllm.data.benchmark import training_subset
    from lensllm.training.device import EnergyMeter

    start = time.perf_counter()
    device, precision = _placement(config)
    meter = EnergyMeter(device).start()
    examples = training_subset(benchmark, size)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    loaded, n_params, n_matmul = _prepared_model(model_path, config, device, precision, model_name=model_name,
                                                 gguf_file=gguf_file, revision=revision)
    trainable = [p for p in loaded.model.parameters() if p.requires_grad]
    # W^s of the Hessian distance: the trainable weight matrices before fine-tuning.
    start_matrices = ({name: p.detach().clone() for name, p in loaded.model.named_parameters() if p.requires_grad and p.dim() == 2}
                      if config.bound_batches and size > 0 else {})
    job = _Job(loaded, config, device, precision, loaded.tokenizer.pad_token_id,
               config.micro_batch_size or config.batch_size, config.micro_batch_size is None)
    train = encode_examples(examples, loaded, benchmark.kind, config)
    test = encode_examples(benchmark.test, loaded, benchmark.kind, config)
    if not test:
        raise ValueError(f"benchmark {benchmark.name!r}: empty test split")

    flops_per_token = _flops_per_token(job, train[: config.batch_size * config.flop_batches]
                                       or test[: config.batch_size * config.flop_batches])
    training = _train(job, train, trainable, f"finetune {loaded.name} {benchmark.name} n={size}")
    measured = _measurements(job, benchmark, train, test, start_matrices)
    energy = meter.stop()
    return FinetuneResult(
        model=loaded.name,
        model_path=str(model_path),
        benchmark=benchmark.name,
        kind=benchmark.kind,
        size=size,
        seed=config.seed,
        is_encoder_decoder=loaded.is_encoder_decoder,
        train_loss_final=(sum(training.last_epoch_losses) / len(training.last_epoch_losses)
                          if training.last_epoch_losses else None),
        steps=training.steps,
        tokens_seen=training.tokens_seen,
        n_params=n_params,
        n_params_matmul=n_matmul,
        flops_measured=flops_per_token * training.tokens_seen,
        flops_analytic=(6.0 if config.method == "full" else 4.0) * n_matmul * training.tokens_seen,
        flops_per_token_measured=flops_per_token,
        wall_seconds=round(time.perf_counter() - start, 3),
        config=asdict(config),
        **_environment(job, energy),
        n_params_trainable=sum(p.numel() for p in trainable),
        **measured,
    )


def _placement(config: FinetuneConfig) -> tuple[str, Precision]:
    """The device and precision `config` asks for (`lensllm.training.device`), or `JobConfigError`
    naming the key when this machine cannot give them."""
    from lensllm.training.device import resolve_device, resolve_precision

    try:
        device = resolve_device(config.device, "finetune.device")
        return device, resolve_precision(config.precision, device, "finetune.precision")
    except ValueError as err:
        raise JobConfigError(str(err)) from err


def _prepared_model(model_path: str, config: FinetuneConfig, device: str, precision: Precision, *,
                    model_name: str | None, gguf_file: str | None, revision: str | None) -> tuple[LoadedModel, int, int]:
    """The model loaded in float32, with its LoRA adapters for `method: lora`, checked to fit the GPU
    (`JobConfigError` naming the key) and moved to `device`; and its parameter counts without the
    adapters: all of them, and those in matrix products."""
    from lensllm.training.device import gpu_memory_bytes, gpu_name

    loaded = load_model(model_path, pad_token=config.pad_token, name=model_name, gguf_file=gguf_file, revision=revision)
    model = loaded.model
    n_params, n_matmul = sum(p.numel() for p in model.parameters()), matmul_params(model)
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
    return loaded, n_params, n_matmul


def _flops_per_token(job: _Job, probe: Sequence[tuple[list[int], list[int]]]) -> float:
    """FLOPs per token position of forward + backward on the `probe` rows, in micro-batches."""

    def measure(micro: int) -> float:
        batches = [collate_rows(probe[i:i + micro], job.pad, job.device) for i in range(0, len(probe), micro)]
        return measure_flops_per_token(job.model, batches, job.encoder_decoder, job.precision, job.device)

    return job.with_micro_batches(measure)


def _train(job: _Job, train: Sequence[tuple[list[int], list[int]]], trainable: list[torch.nn.Parameter],
           desc: str) -> _Training:
    """`epochs` passes over the `train` rows in seeded random order, one optimizer step per batch
    (AdamW, linear warm-up then linear decay to 0, gradients clipped at 1)."""
    import torch
    from tqdm import tqdm

    config, model = job.config, job.model
    generator = torch.Generator().manual_seed(config.seed)
    total_steps = math.ceil(len(train) / config.batch_size) * config.epochs
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    scaler = job.precision.scaler(job.device)
    warmup_steps = max(1, round(config.warmup * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup_steps, (total_steps - step) / max(1, total_steps - warmup_steps + 1))
    )
    model.train()
    tokens_seen = 0
    last_epoch_losses: list[float] = []
    bar = tqdm(total=total_steps, desc=desc, file=sys.stderr, mininterval=5.0, disable=total_steps == 0)
    for _ in range(config.epochs):
        last_epoch_losses = []
        order = torch.randperm(len(train), generator=generator).tolist()
        for i in range(0, len(order), config.batch_size):
            rows = [train[j] for j in order[i:i + config.batch_size]]
            loss_value, positions = job.with_micro_batches(
                lambda micro: accumulate_gradients(model, rows, job.pad, micro, job.encoder_decoder, job.precision,
                                                   job.device, scaler))
            _optimizer_step(optimizer, scheduler, scaler, trainable)
            tokens_seen += positions
            last_epoch_losses.append(loss_value)
            bar.update()
            bar.set_postfix(loss=f"{last_epoch_losses[-1]:.3f}", refresh=False)
    bar.close()
    return _Training(total_steps, tokens_seen, last_epoch_losses)


def _optimizer_step(optimizer, scheduler, scaler, trainable: list[torch.nn.Parameter]) -> None:
    """One step on the accumulated gradients (unscaled first under fp16), clipped at norm 1; the
    learning rate moves on and the gradients are cleared."""
    import torch

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
        positions += batch_positions(batch, encoder_decoder)
    return loss_value, positions


def _measurements(job: _Job, benchmark: Benchmark, train: Sequence[tuple[list[int], list[int]]],
                  test: Sequence[tuple[list[int], list[int]]], start_matrices: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The result's fields measured after training (module docstring): the test loss, the Hessian
    trace, and with `start_matrices` the bound's training losses and Hessian distance."""
    from lensllm.data.benchmark import training_subset

    config, model = job.config, job.model
    test_loss, test_tokens = evaluate(model, test, job.pad, config.eval_batch_size, job.encoder_decoder,
                                      job.precision, job.device)
    curvature = None
    if config.hessian_probes:
        rows = encode_examples(training_subset(benchmark, min(config.hessian_examples, len(benchmark.train))),
                               job.loaded, benchmark.kind, config)
        curvature = loss_hessian_trace(model, rows, job.pad, config.eval_batch_size, job.encoder_decoder,
                                       config.hessian_probes, config.seed, job.precision, job.device)
    train_loss = train_loss_max = distance = None
    if start_matrices:
        train_loss, train_loss_max = training_losses(model, train, job.pad, config.eval_batch_size,
                                                     job.encoder_decoder, job.precision, job.device)
        rows = train[: config.batch_size * config.bound_batches]
        distance = loss_hessian_distance(model, [rows[i:i + job.micro] for i in range(0, len(rows), job.micro)],
                                         job.pad, job.encoder_decoder, start_matrices, job.precision, job.device)
    return dict(
        test_loss=test_loss,
        test_tokens=test_tokens,
        hessian_trace=curvature.trace if curvature else None,
        hessian_trace_stderr=curvature.stderr if curvature else None,
        hessian_seconds=curvature.seconds if curvature else None,
        train_loss=train_loss,
        train_loss_max=train_loss_max,
        hessian_distance=distance.total if distance else None,
        hessian_distance_per_matrix=distance.per_matrix if distance else None,
        hessian_distance_batches=distance.batches if distance else None,
        hessian_distance_seconds=distance.seconds if distance else None,
    )


def _environment(job: _Job, energy: EnergyReading) -> dict[str, Any]:
    """The result's fields on where and how the job ran, and the energy it used."""
    import torch
    import transformers

    from lensllm.training.device import gpu_name

    return dict(
        versions={"python": platform.python_version(), "torch": torch.__version__,
                  "transformers": transformers.__version__},
        device=job.device,
        precision=job.precision.name,
        gpu_name=gpu_name(job.device),
        method=job.config.method,
        micro_batch_size=job.micro,
        energy_joules=energy.joules,
        energy_gpu_joules=energy.gpu_joules,
        energy_cpu_joules=energy.cpu_joules,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: validate the inputs, then run one job per (size, out) pair and write the JSONs."""
    parser = _parser()
    args = parser.parse_args(argv)
    if len(args.size) != len(args.out):
        parser.error(f"{len(args.size)} --size value(s) but {len(args.out)} --out path(s); give one path per size")
    config = _config(parser, args)
    slot = claim_gpu_slot_option(parser, args)  # before torch starts CUDA
    if slot is not None:
        print(f"GPU slot {slot.index}: CUDA_VISIBLE_DEVICES={slot.gpu}", file=sys.stderr)
    with exit_on_error(JobConfigError):
        _placement(config)
    benchmark = read_benchmark_option(parser, args)
    for size in args.size:
        if not 0 <= size <= len(benchmark.train):
            parser.error(f"--size {size}: benchmark {benchmark.name!r} ({args.benchmark}) has "
                         f"{len(benchmark.train)} training examples; sizes must be in 0..{len(benchmark.train)}")
    for size, out in zip(args.size, args.out):
        with exit_on_error(ModelLoadError, JobConfigError):
            result = finetune(args.model, benchmark, size, config, model_name=args.model_name, gguf_file=args.gguf_file,
                              revision=args.revision)
        write_result_json(result, out)
        print(f"{result.model} {result.benchmark} n={size}: test loss {result.test_loss:.4f}, "
              f"{result.steps} steps, {result.wall_seconds:.1f} s -> {out}", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    """The options of `main`; the defaults are `FinetuneConfig`'s."""
    defaults = FinetuneConfig()
    parser = argparse.ArgumentParser(prog="python -m lensllm.training.finetune", description=__doc__.splitlines()[0])
    add_model_options(parser)
    add_benchmark_options(parser)
    parser.add_argument("--size", type=int, nargs="+", required=True,
                        help="training subset size(s); 0 = zero-shot evaluation only")
    parser.add_argument("--out", nargs="+", required=True, help="result JSON path(s), one per --size")
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
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
    add_gpu_slot_options(parser)
    return parser


def _config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> FinetuneConfig:
    """The job's settings from the options, or the usage error of a value `FinetuneConfig` rejects."""
    try:
        return FinetuneConfig(
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


if __name__ == "__main__":
    sys.exit(main())
