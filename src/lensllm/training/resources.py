"""What a fine-tuning job needs where it runs: host memory, GPU memory and run time, estimated
before it runs (pure Python: the workflow imports it to set each job's resources).

Parameters N: measured from a local directory's weight files, read from a hub name ("opt-1.3b"),
or taken from `KNOWN_PARAMS` (public model cards); 1B when nothing says.

Memory, for a job with micro-batch m of sequences of s token positions (source + target):
- on the CPU (the host does everything): 1500 MB for Python, torch and transformers, 24 bytes a
  parameter (fp32 weights, gradients, AdamW's two moments, room for activations) and the tokenized
  subset (about 40 bytes a token as Python lists);
- on a GPU: the host holds the Python stack, the fp32 weights while they are loaded and moved
  (8 bytes a parameter: the checkpoint's tensors and the model built from them) and the subset;
  the GPU holds 500 MB of CUDA context, the fp32 master weights (4 bytes a parameter), and with
  `method: full` their gradients (4) and AdamW's moments (8), or with `method: lora` none of
  these beyond the adapters' (negligible), plus the activations kept for the backward pass:
  m * s * (20 * L * d values of 4 bytes in fp32, 2 in bf16/fp16, + the logits over the vocabulary,
  3 float32 copies), with the depth L and width d of a GPT-like model of N parameters
  (N = 12 L d^2 with d = 64 L, the aspect ratio of GPT-2 and OPT), a vocabulary of 50,257 unless
  given; times 1.2 for the allocator's fragmentation.
Run time: 10 minutes to start and load, plus twice (a margin) the FLOPs 6 N (`full`) or 4 N (`lora`:
no weight gradients of the frozen weights) per training token and 2 N per test token, over a
throughput per device kind and precision: the CPU's is measured on this project's machine
(1e10 FLOP/s per thread, docs/performance.md); a GPU's, until `benchmarks/gpu_check.sh` has
measured the user's card and `finetune.flops_per_second` carries that figure, a conservative
2e13 FLOP/s in bf16/fp16 (about 7% of an A100's or 2% of an H100's dense bf16 peak: small models
do not fill a GPU) and 5e12 in fp32. Everything is multiplied by the attempt (retries get more).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

KNOWN_PARAMS = {
    "gpt2": 124e6,
    "gpt2-medium": 355e6,
    "gpt2-large": 774e6,
    "gpt2-xl": 1.56e9,
    "t5-small": 60e6,
    "t5-base": 223e6,
    "google/t5-v1_1-base": 248e6,
    "google/mt5-base": 580e6,
    "google/mt5-large": 1.23e9,
    "facebook/bart-base": 140e6,
    "facebook/bart-large": 406e6,
    "facebook/bart-large-cnn": 406e6,
    "facebook/bart-large-xsum": 406e6,
    "microsoft/phi-2": 2.78e9,
    "microsoft/phi-1_5": 1.42e9,
    "google/switch-base-8": 620e6,
    "google/switch-base-16": 1.0e9,
    "google/switch-base-32": 2.0e9,
    "ai-forever/mGPT": 1.42e9,
}
DEFAULT_PARAMS = 1e9
CPU_FLOPS_PER_THREAD = 1e10
GPU_FLOPS = {"fp32": 5e12, "bf16": 2e13, "fp16": 2e13}
MAX_RUNTIME = 7 * 24 * 60
STACK_MB = 1500
CUDA_CONTEXT_MB = 500
DEFAULT_VOCAB = 50257
FRAGMENTATION = 1.2


def params_from_path(name: str, path: str) -> float:
    """The estimated parameter count of a candidate (see the module docstring), without loading it."""
    local = Path(path).expanduser()
    if local.is_dir():
        # 16-bit weights are 2 bytes a parameter (32-bit ones are over-counted, which is safe);
        # a quantized GGUF file is de-quantized on loading: count a parameter per byte.
        weights = sum(f.stat().st_size for f in local.glob("*.safetensors"))
        weights += sum(f.stat().st_size for f in local.glob("*.bin"))
        gguf = sum(f.stat().st_size for f in local.glob("*.gguf"))
        if weights or gguf:
            return weights / 2 + gguf
    if path in KNOWN_PARAMS:
        return KNOWN_PARAMS[path]
    size = re.search(r"(\d+(?:\.\d+)?)([MmBb])(?![A-Za-z])", f"{name} {path}")
    if size:
        return float(size.group(1)) * (1e6 if size.group(2) in "Mm" else 1e9)
    return DEFAULT_PARAMS


def zoo_params(row: Mapping, vocab: int) -> float:
    """Parameters of a zoo sheet row (embedding + blocks; T5 has an encoder and a decoder)."""
    d, layers, d_ff = row["d_model"], row["n_layers"], row["d_ff"]
    stacks = 2 if row["architecture"] == "t5" else 1
    return vocab * d + stacks * layers * (4 * d * d + 2 * d * d_ff)


def shape_of(params: float) -> tuple[int, int]:
    """(depth L, width d) of a GPT-like model of `params` parameters: 12 L d^2 = N with d = 64 L."""
    layers = max(1, round((params / (12 * 64**2)) ** (1 / 3)))
    return layers, max(1, round(math.sqrt(params / (12 * layers))))


@dataclass(frozen=True)
class JobEstimate:
    """Resources of one job: host memory (MB), GPU memory (MB, 0 on the CPU), minutes."""

    host_mem_mb: int
    gpu_mem_mb: int
    minutes: int


def gpu_bytes(params: float, *, method: str = "full", precision: str = "fp32", micro_batch: int = 1,
              seq_len: int = 512, vocab: int = DEFAULT_VOCAB) -> float:
    """GPU bytes of a fine-tune (weights, gradients, optimizer, activations; module docstring)."""
    per_param = 16 if method == "full" else 4
    layers, width = shape_of(params)
    value = 4 if precision == "fp32" else 2
    per_token = 20 * layers * width * value + 3 * 4 * vocab
    return FRAGMENTATION * (per_param * params + micro_batch * seq_len * per_token) + CUDA_CONTEXT_MB * 1e6


def estimate_finetune(params: float, train_tokens: float, test_tokens: float, *, device: str = "cpu",
                      precision: str = "fp32", method: str = "full", micro_batch: int = 16, seq_len: int = 112,
                      data_tokens: float = 0.0, threads: int = 1, gpus: int = 0, flops_per_second: float | None = None,
                      vocab: int = DEFAULT_VOCAB, attempt: int = 1, cap: bool = True) -> JobEstimate:
    """Host memory, GPU memory and minutes of a fine-tuning job (module docstring).

    `device` is the configured one: ``cpu`` (or ``auto`` without GPUs booked) runs on the host, any
    other with `gpus` >= 1 on a GPU. `data_tokens` are the token positions of the largest subset.
    The minutes are capped at 7 days (a longer request fits no partition) unless `cap` is False.
    """
    on_gpu = gpus > 0 and device != "cpu"
    data_mb = data_tokens * 40 / 1e6
    if on_gpu:
        host = STACK_MB + 8 * params / 1e6 + data_mb
        gpu = gpu_bytes(params, method=method, precision=precision, micro_batch=micro_batch, seq_len=seq_len,
                        vocab=vocab) / 1e6
        rate = flops_per_second or gpus * GPU_FLOPS[precision]
    else:
        host, gpu = STACK_MB + 24 * params / 1e6 + data_mb, 0.0
        rate = flops_per_second or threads * CPU_FLOPS_PER_THREAD
    per_token = 6 if method == "full" else 4
    minutes = 10 + 2 * (per_token * params * train_tokens + 2 * params * test_tokens) / rate / 60
    minutes = attempt * minutes
    return JobEstimate(int(attempt * host), int(math.ceil(attempt * gpu)), int(min(minutes, MAX_RUNTIME) if cap else minutes))


def check_fits_gpu(params: float, gpu_total_bytes: int, *, method: str, precision: str, seq_len: int,
                   vocab: int = DEFAULT_VOCAB, device_name: str = "the GPU") -> None:
    """ValueError when the fine-tune cannot fit the GPU even at micro-batch 1 (naming the keys)."""
    need = gpu_bytes(params, method=method, precision=precision, micro_batch=1, seq_len=seq_len, vocab=vocab)
    if need > gpu_total_bytes:
        hint = ("use finetune.method: lora (only the adapters are trained) or a GPU with more memory"
                if method == "full" else "use a GPU with more memory or shorter sequences "
                "(finetune.max_len_source, finetune.max_len_target)")
        raise ValueError(f"finetune.method: {method!r}: the fine-tune of a model of {params / 1e9:.2f}B parameters "
                         f"needs about {need / 2**30:.1f} GiB of GPU memory at micro-batch 1, {device_name} has "
                         f"{gpu_total_bytes / 2**30:.1f} GiB; {hint}")


def _merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) else value
    return out


def hub_estimates(config: Mapping, repository: Path) -> list[dict]:
    """Per candidate of `config` (the merged workflow config): its parameters and the estimate of
    its largest fine-tuning job (size `target`, one job per size) where the config runs it, the
    hours not capped (the workflow's requests are, at 7 days)."""
    import pandas as pd

    ft = config["finetune"]
    seq_len = ft["max_len_source"] + ft["max_len_target"]
    size = config["target"]
    device = ft.get("device", "auto")
    gpus = ft.get("gpus", 1 if device.startswith("cuda") else 0)
    rows = []
    sheet = config.get("models")
    if sheet:
        path = Path(sheet) if Path(sheet).is_absolute() else repository / sheet
        for row in pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False).to_dict("records"):
            n = params_from_path(row["name"], row["path"])
            est = estimate_finetune(
                n, size * ft["epochs"] * seq_len, config["data"]["test_size"] * seq_len, device=device,
                precision=ft.get("precision", "fp32"), method=ft.get("method", "full"),
                micro_batch=ft.get("micro_batch_size") or ft["batch_size"], seq_len=seq_len,
                data_tokens=size * seq_len, threads=ft["threads"], gpus=gpus,
                flops_per_second=ft.get("flops_per_second"), cap=False)
            rows.append({"model": row["name"], "params": n, "host_gb": est.host_mem_mb / 1e3,
                         "gpu_gb": est.gpu_mem_mb / 1e3, "hours": est.minutes / 60,
                         "gpu_gb_micro1": gpu_bytes(n, method=ft.get("method", "full"),
                                                    precision=ft.get("precision", "fp32"), seq_len=seq_len) / 1e9})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the estimates of every candidate's largest fine-tune (a dry-run helper)."""
    import yaml

    parser = argparse.ArgumentParser(prog="python -m lensllm.training.resources", description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/hub.yaml", help="laid over config/config.yaml")
    parser.add_argument("--repository", type=Path, default=Path("."), help="the workflow's directory")
    parser.add_argument("--device", help="override finetune.device")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="override finetune.precision")
    parser.add_argument("--method", choices=("full", "lora"), help="override finetune.method")
    parser.add_argument("--micro-batch-size", type=int, help="override finetune.micro_batch_size")
    args = parser.parse_args(argv)
    base = yaml.safe_load((args.repository / "config/config.yaml").read_text())
    config = _merge(base, yaml.safe_load(Path(args.configfile).read_text()))
    overrides = {"device": args.device, "precision": args.precision, "method": args.method,
                 "micro_batch_size": args.micro_batch_size}
    config["finetune"] = {**config["finetune"], **{k: v for k, v in overrides.items() if v is not None}}
    ft = config["finetune"]
    print(f"# largest job (size {config['target']}, {ft['epochs']} epochs) per candidate: device "
          f"{ft.get('device', 'auto')}, precision {ft.get('precision', 'fp32')}, method {ft.get('method', 'full')}, "
          f"micro-batch {ft.get('micro_batch_size') or ft['batch_size']}")
    print("model\tparams\thost_GB\tGPU_GB\tGPU_GB_micro1\thours")
    for row in hub_estimates(config, args.repository):
        print(f"{row['model']}\t{row['params'] / 1e6:.0f}M\t{row['host_gb']:.1f}\t{row['gpu_gb']:.1f}\t"
              f"{row['gpu_gb_micro1']:.1f}\t{row['hours']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
