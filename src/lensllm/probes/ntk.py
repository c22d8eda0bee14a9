"""LensLLM's NTK term F(Theta, t), measured from the pre-trained model on the task.

On a seeded probe set X of n training examples of the benchmark, with the model at its pre-trained
weights w0 in eval mode, each example x gets one scalar output

    f(x) = mean log-likelihood of x's target tokens   (= -its mean per-token cross-entropy),

so the target is Y = 0 and the residual r0 = f0(X) - Y is minus the per-example loss. The empirical
neural tangent kernel is the n x n Gram matrix of the output gradients,

    Theta_ij = < d f(x_i) / d w , d f(x_j) / d w >,

over every parameter of the model, or above `max_params` parameters over a subset: parameter
tensors taken from the output end of the model (reverse registration order: the untied head, the
final norm, then the last blocks, tensor by tensor) while their total stays within `max_params`.
Theta is symmetric positive semi-definite. Linearised gradient flow with learning rate eta moves the
residual to r(t) = exp(-eta Theta t) r0 after time t (optimizer steps), and

    F(t) = || exp(-eta Theta t) r0 ||^2 = sum_k exp(-2 eta lambda_k t) (u_k . r0)^2,

with the eigendecomposition Theta = U diag(lambda) U^T (the true matrix exponential of the
symmetric kernel; eigenvalues below zero by rounding are set to 0). F(0) = ||r0||^2 and F is
non-increasing in t. The result stores lambda and the projections u_k . r0, so F is evaluated at
any t without the kernel. Its cost, recorded and charged to the selectors that use it: the FLOPs of
the n forward and backward passes (the first counted by `torch.utils.flop_counter.FlopCounterMode`,
scaled to all n by token positions), plus 2 n^2 p for the Gram matrix of p parameters and 9 n^3 for
the eigendecomposition; and its seconds: `seconds` for the kernel, F and its spectrum, and
`load_seconds` for loading the model (in a fresh process mostly the import of its transformers
module).

Device and precision (`ntk.device`, `finetune.precision`): the passes run on the device, under the
precision's autocast; the per-example gradients come back to the host in float32, where the Gram
matrix and its spectrum are computed as above.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lensllm.curves.terms import NtkTerm, write_ntk
from lensllm.training.cli import exit_on_error
from lensllm.training.device import PRECISIONS, add_gpu_slot_options, claim_gpu_slot_option
from lensllm.training.loading import add_model_options
from lensllm.training.tokens import add_benchmark_options, read_benchmark_option

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

    from lensllm.data.benchmark import Benchmark
    from lensllm.training.settings import FinetuneConfig

DEFAULT_MAX_PARAMS = 5_000_000


def kernel_spectrum(kernel: np.ndarray, residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lambda ascending, U^T r0) of a symmetric kernel; rounding negatives of lambda set to 0."""
    symmetric = 0.5 * (kernel + kernel.T)
    eigenvalues, vectors = np.linalg.eigh(symmetric)
    return np.maximum(eigenvalues, 0.0), vectors.T @ residuals


def probe_indices(n_train: int, n_probes: int, seed: int) -> list[int]:
    """A seeded sample of min(n_probes, n_train) distinct training indices, in ascending order."""
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n_train, size=min(n_probes, n_train), replace=False))


def parameter_subset(model: PreTrainedModel, max_params: int) -> list[tuple[str, torch.nn.Parameter]]:
    """Every parameter if there are at most `max_params`; else tensors from the output end.

    The walk goes through `named_parameters()` in reverse registration order (the untied head, the
    final norm, the last blocks; a tied head is registered with the input embedding, so it comes
    last) and stops before the first tensor that would take the total above `max_params`.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if sum(p.numel() for _, p in named) <= max_params:
        return named
    chosen, total = [], 0
    for name, param in reversed(named):
        if total + param.numel() > max_params:
            break
        chosen.append((name, param))
        total += param.numel()
    if not chosen:
        raise ValueError(f"max_params={max_params} is smaller than the last parameter tensor ({named[-1][0]}, "
                         f"{named[-1][1].numel()} values): raise ntk.max_params")
    return chosen[::-1]


def empirical_ntk(
    model: PreTrainedModel,
    rows: Sequence[tuple[list[int], list[int]]],
    pad: int,
    encoder_decoder: bool,
    params: Sequence[torch.Tensor],
    precision=None,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, float]:
    """(Theta, f0(X), FLOPs of the passes): one backward per example for the gradient of f(x).

    The gradients are stacked in float32 (n x p); the Gram matrix is summed in float64 over
    float32 products of chunks of columns (fast, about 1e-7 relative error), in about 4 n p bytes.
    The FLOPs of the first example's passes are counted by `FlopCounterMode` (counting all of
    them would triple the time) and scaled to all by their token positions. The passes run on
    `device` under the autocast of `precision` (None: fp32).
    """
    import contextlib

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from lensllm.training.tokens import collate_rows, token_loss

    width = sum(p.numel() for p in params)
    gradients = torch.empty(len(rows), width, dtype=torch.float32)
    outputs = np.empty(len(rows))
    counter = FlopCounterMode(display=False)
    for i, row in enumerate(rows):
        with counter if i == 0 else contextlib.nullcontext():
            with precision.autocast(device) if precision else contextlib.nullcontext():
                loss_sum, count = token_loss(model, collate_rows([row], pad, device), encoder_decoder)
            output = -loss_sum / count
            grads = torch.autograd.grad(output, params, allow_unused=True)
        gradients[i] = torch.cat([
            torch.zeros(p.numel()) if g is None else g.reshape(-1).float().cpu() for g, p in zip(grads, params)
        ])
        outputs[i] = float(output.detach())
    positions = [len(inputs) + (len(labels) if encoder_decoder else 0) for inputs, labels in rows]
    pass_flops = counter.get_total_flops() * sum(positions) / positions[0]
    kernel = torch.zeros(len(rows), len(rows), dtype=torch.float64)
    chunk = 1 << 16  # float32 products over short chunks, summed in float64: about 1e-7 relative error
    for start in range(0, width, chunk):
        block = gradients[:, start:start + chunk]
        kernel += (block @ block.T).double()
    kernel = 0.5 * (kernel + kernel.T)  # exactly symmetric (the chunked products round independently)
    return kernel.numpy(), outputs, float(pass_flops)


def compute_ntk(
    model_path: str,
    benchmark: Benchmark,
    *,
    eta: float,
    n_probes: int = 32,
    seed: int = 0,
    max_params: int = DEFAULT_MAX_PARAMS,
    finetune_config: FinetuneConfig | None = None,
    model_name: str | None = None,
    gguf_file: str | None = None,
    revision: str | None = None,
    device: str = "cpu",
    precision: str = "fp32",
) -> NtkTerm:
    """Load the pre-trained model and measure its NTK term on `benchmark` (see the module docstring).

    The probe examples are encoded like the fine-tuning job's (`finetune_config`: maximum lengths,
    pad token), so f0 is minus the loss fine-tuning starts from. `device` ('auto' or a name) and
    `precision` are resolved by `lensllm.training.device` (ValueError naming ntk.device or
    finetune.precision when they cannot be used).
    """
    import torch

    from lensllm.training.device import resolve_device, resolve_precision
    from lensllm.training.loading import load_model
    from lensllm.training.settings import FinetuneConfig
    from lensllm.training.tokens import encode_examples

    start = time.perf_counter()
    device = resolve_device(device, "ntk.device")
    amp = resolve_precision(precision, device, "finetune.precision")
    config = finetune_config or FinetuneConfig()
    torch.set_num_threads(config.threads)
    loaded = load_model(model_path, pad_token=config.pad_token, name=model_name, gguf_file=gguf_file, revision=revision)
    model = loaded.model.to(device)
    loaded_at = time.perf_counter()
    model.eval()
    model.set_attn_implementation("eager")
    chosen = parameter_subset(model, max_params)
    chosen_ids = {id(p) for _, p in chosen}
    for param in model.parameters():
        param.requires_grad_(id(param) in chosen_ids)
    examples = [benchmark.train[i] for i in probe_indices(len(benchmark.train), n_probes, seed)]
    rows = encode_examples(examples, loaded, benchmark.kind, config)
    params = [p for _, p in chosen]
    kernel, outputs, pass_flops = empirical_ntk(model, rows, loaded.tokenizer.pad_token_id, loaded.is_encoder_decoder,
                                                params, amp, device)
    residuals = outputs  # f0(X) - Y with Y = 0: a perfect model gives every target token probability 1
    eigenvalues, projections = kernel_spectrum(kernel, residuals)
    n, used = len(rows), sum(p.numel() for p in params)
    return NtkTerm(
        model=loaded.name,
        benchmark=benchmark.name,
        eta=eta,
        eigenvalues=tuple(float(v) for v in eigenvalues),
        projections=tuple(float(v) for v in projections),
        residuals=tuple(float(v) for v in residuals),
        n_probes=n,
        seed=seed,
        params_total=sum(p.numel() for p in model.parameters()),
        params_used=used,
        first_param_used=chosen[0][0],
        flops=pass_flops + 2.0 * n * n * used + 9.0 * n**3,
        seconds=round(time.perf_counter() - loaded_at, 3),
        load_seconds=round(loaded_at - start, 3),
        device=device,
        precision=amp.name,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure one model's NTK term on one benchmark and write it as JSON."""
    from lensllm.training.loading import ModelLoadError
    from lensllm.training.settings import FinetuneConfig

    parser = argparse.ArgumentParser(prog="python -m lensllm.probes.ntk", description=__doc__.splitlines()[0])
    add_model_options(parser)
    add_benchmark_options(parser)
    parser.add_argument("--out", required=True, help="the NTK term JSON to write")
    parser.add_argument("--eta", type=float, required=True, help="the fine-tuning learning rate")
    parser.add_argument("--probes", type=int, default=32, help="probe examples (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the probe sample")
    parser.add_argument("--max-params", type=int, default=DEFAULT_MAX_PARAMS,
                        help="above this many parameters, use the subset at the output end")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N or mps (ntk.device)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="autocast of the passes (finetune.precision)")
    add_gpu_slot_options(parser)
    args = parser.parse_args(argv)
    if args.probes < 2 or args.eta <= 0 or args.max_params < 1:
        parser.error("--probes >= 2, --eta > 0 and --max-params >= 1 are required")
    benchmark = read_benchmark_option(parser, args)
    slot = claim_gpu_slot_option(parser, args)  # noqa: F841 (before torch starts CUDA; the lock is held while `slot` lives)
    config = FinetuneConfig(max_len_source=args.max_len_source, max_len_target=args.max_len_target,
                            threads=args.threads, pad_token=args.pad_token)
    with exit_on_error(ModelLoadError, ValueError):
        term = compute_ntk(args.model, benchmark, eta=args.eta, n_probes=args.probes, seed=args.seed,
                           max_params=args.max_params, finetune_config=config, model_name=args.model_name,
                           gguf_file=args.gguf_file, revision=args.revision, device=args.device,
                           precision=args.precision)
    write_ntk(term, args.out)
    print(f"{term.model} {term.benchmark}: NTK on {term.n_probes} probes, {term.params_used:,} of "
          f"{term.params_total:,} parameters, trace {sum(term.eigenvalues):.4g}, F(0) {float(term.f(0.0)):.4g}, "
          f"{term.seconds:.1f} s (+ {term.load_seconds:.1f} s to load the model) -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
