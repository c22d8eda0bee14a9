"""Benchmark the fine-tuning job: our torch loop against `transformers.Trainer`, model by model.

    PYTHONPATH=src python benchmarks/finetune_throughput.py [--zoo results/default/zoo]
        [--benchmark results/default/data/debsum.jsonl] [--size 256] [--threads 1]
        [--models gpt2-s-wiki t5-s-pairs] [--repeats 1] [--out results/benchmarks/finetune_throughput.tsv]

Measures, in one run on this machine, for each model of the zoo directory (every subdirectory
holding a config.json, or those named by --models), on one benchmark and one training size, with
`--threads` torch threads and the default `FinetuneConfig` otherwise:

1. our job, `lensllm.training.finetune.finetune`: its training time, its training tokens per second
   (`tokens_seen` / training time; token positions, padding included, encoder + decoder positions
   for encoder-decoder models) and achieved FLOP/s (`flops_measured` / training time).
   The result has no training time of its own (`wall_seconds` covers the whole call), so the call
   is timed and the time spent inside `load_model`, `encode_examples`, the FLOP probe
   (`_measure_flops_per_token`) and the test evaluation (`_evaluate`) is measured by wrapping
   those module functions and subtracted: `ours_seconds` is the rest, i.e. the optimizer and
   scheduler set-up plus the training loop (collation, forward, backward, clipping, steps).
   `ours_call_seconds` is the whole call (loading, encoding, FLOP probe, training, evaluation).
   The lazy imports of `finetune()` are done before, so that they count in neither.
   If a later `FinetuneResult` reports a training time (`train_seconds`), that is used instead.
2. the same job through `transformers.Trainer`: same model loaded the same way
   (`lensllm.training.loading.load_model`), the same examples (`encode_examples`) and collation
   (`lensllm.training.tokens.collate_rows`: right padding, labels -100), same batch size, epochs, lr, linear
   warm-up steps then linear decay, weight decay, `torch.optim.AdamW` (`optim="adamw_torch"`, not
   the fused default of transformers 5), seed, max_grad_norm 1.0, no evaluation, no checkpoint,
   no logging or reporting, CPU, no dataloader workers. `trainer_seconds` is the wall time of
   `trainer.train()` (optimizer and accelerate set-up, training loop; the Trainer is built before);
   `trainer_runtime_seconds` is the Trainer's own `train_runtime` metric, which leaves out part of
   that set-up (it matters for small sizes: a few steps). Its tokens per second and FLOP/s use
   our job's token count and our measured FLOPs per token position (`flops_per_token_measured`),
   since the work per step is the same.
   Differences that do not change the work: the Trainer shuffles with its own sampler (same seed,
   other order, so padding may differ slightly), its linear schedule starts at lr 0 where ours
   starts at lr / warm-up steps, and it takes the mean loss inside the model.
3. `speed_ratio` = ours_tokens_per_s / trainer_tokens_per_s (> 1: our loop is faster).

With --repeats R each job is run R times and the shortest time is kept. The table (TSV) goes to
--out and to stdout; progress to stderr. The numbers depend on the load of the machine: run it
alone for reference figures. The Trainer needs `accelerate>=1.1.0` besides transformers.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from lensllm.training import finetune as ft
from lensllm.training.loading import load_model
from lensllm.training.settings import PAD_CHOICES, FinetuneConfig, FinetuneResult
from lensllm.training.tokens import collate_rows, encode_examples
from lensllm.data.benchmark import read_benchmark, training_subset

COLUMNS = ["model", "architecture", "params", "tokens", "ours_seconds", "ours_tokens_per_s", "ours_flop_per_s",
           "trainer_seconds", "trainer_tokens_per_s", "trainer_flop_per_s", "speed_ratio", "ours_call_seconds",
           "trainer_runtime_seconds"]
# Functions of lensllm.training.finetune that `finetune()` calls outside its training loop.
NON_TRAINING = ("load_model", "encode_examples", "measure_flops_per_token", "evaluate", "loss_hessian_trace")


def zoo_models(zoo: Path, names: list[str] | None) -> list[Path]:
    """Model directories of `zoo` (subdirectories with a config.json), optionally only `names`."""
    found = {p.name: p for p in sorted(zoo.iterdir()) if (p / "config.json").is_file()} if zoo.is_dir() else {}
    if names is None:
        return list(found.values())
    missing = [name for name in names if name not in found]
    if missing:
        raise SystemExit(f"error: --models {' '.join(missing)}: not in {zoo} (found: {', '.join(found) or 'none'})")
    return [found[name] for name in names]


def run_ours(model_dir: Path, benchmark, size: int, config: FinetuneConfig) -> tuple[FinetuneResult, float, float]:
    """(result, training seconds, whole-call seconds) of `lensllm.training.finetune.finetune`."""
    import torch  # noqa: F401  the lazy imports of finetune() are done here, outside its timing
    import tqdm  # noqa: F401
    import transformers  # noqa: F401
    spent = {name: 0.0 for name in NON_TRAINING}
    originals = {name: getattr(ft, name) for name in NON_TRAINING}

    def timed(name):
        function = originals[name]

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start
        return wrapper

    for name in NON_TRAINING:
        setattr(ft, name, timed(name))
    try:
        start = time.perf_counter()
        result = ft.finetune(str(model_dir), benchmark, size, config, model_name=model_dir.name)
        call = time.perf_counter() - start
    finally:
        for name, function in originals.items():
            setattr(ft, name, function)
    reported = getattr(result, "train_seconds", None)
    train = float(reported) if reported is not None else call - sum(spent.values())
    return result, train, call


def run_trainer(model_dir: Path, benchmark, size: int, config: FinetuneConfig) -> tuple[float, float]:
    """(wall seconds of `transformers.Trainer.train()`, its own `train_runtime`) on the same job."""
    import torch
    from transformers import Trainer, TrainingArguments

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    loaded = load_model(str(model_dir), pad_token=config.pad_token, name=model_dir.name)
    pad = loaded.tokenizer.pad_token_id
    train = encode_examples(training_subset(benchmark, size), loaded, benchmark.kind, config)
    total_steps = math.ceil(len(train) / config.batch_size) * config.epochs
    warmup_steps = max(1, round(config.warmup * total_steps))  # as in finetune(); an int >= 1 is a step count
    threads_seen: list[int] = []

    def collate(rows):
        if not threads_seen:
            threads_seen.append(torch.get_num_threads())
        return collate_rows(rows, pad)

    with tempfile.TemporaryDirectory(prefix="trainer-bench-") as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=config.batch_size,
            num_train_epochs=config.epochs,
            learning_rate=config.lr,
            lr_scheduler_type="linear",
            warmup_steps=warmup_steps,
            weight_decay=config.weight_decay,
            optim="adamw_torch",
            max_grad_norm=1.0,
            seed=config.seed,
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=True,
            dataloader_num_workers=0,
            dataloader_pin_memory=False,
            remove_unused_columns=False,
            label_names=["labels"],
        )
        trainer = Trainer(model=loaded.model, args=args, train_dataset=train, data_collator=collate)
        torch.set_num_threads(config.threads)
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # its closing metrics are printed: keep stdout for the table
            output = trainer.train()
        seconds = time.perf_counter() - start
    if output.global_step != total_steps:
        raise RuntimeError(f"{model_dir.name}: Trainer ran {output.global_step} steps, our job runs {total_steps}")
    if threads_seen and threads_seen[0] != config.threads:
        print(f"warning: {model_dir.name}: Trainer ran with {threads_seen[0]} torch threads, not {config.threads}",
              file=sys.stderr)
    return seconds, float(output.metrics["train_runtime"])


def architecture(model_dir: Path) -> str:
    config = json.loads((model_dir / "config.json").read_text())
    return (config.get("architectures") or [config.get("model_type", "?")])[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", type=Path, default=Path("results/default/zoo"),
                        help="directory of models (subdirectories with a config.json)")
    parser.add_argument("--models", nargs="+", help="only these model subdirectories of --zoo")
    parser.add_argument("--benchmark", type=Path, default=Path("results/default/data/debsum.jsonl"),
                        help="benchmark file written by lensllm.data.benchmark.write_benchmark")
    parser.add_argument("--size", type=int, default=256, help="training subset size (>= 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both jobs")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each job; the shortest time is kept")
    parser.add_argument("--pad-token", choices=PAD_CHOICES, help="as in lensllm.training.finetune")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/finetune_throughput.tsv"))
    args = parser.parse_args(argv)

    if not args.benchmark.is_file():
        parser.error(f"--benchmark {args.benchmark}: no such file")
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be >= 1")
    benchmark = read_benchmark(args.benchmark)
    if not 1 <= args.size <= len(benchmark.train):
        parser.error(f"--size {args.size}: must be in 1..{len(benchmark.train)} ({args.benchmark})")
    models = zoo_models(args.zoo, args.models)
    if not models:
        parser.error(f"--zoo {args.zoo}: no subdirectory with a config.json")
    config = FinetuneConfig(threads=args.threads, pad_token=args.pad_token)
    from transformers.utils import is_accelerate_available

    if not is_accelerate_available("1.1.0"):  # checked before the first (long) job, not after it
        parser.error("transformers.Trainer needs accelerate>=1.1.0, which is not installed: "
                     "pip install 'accelerate>=1.1.0' (or transformers[torch])")

    rows = []
    for model_dir in models:
        print(f"{model_dir.name}: our job ...", file=sys.stderr)
        ours = [run_ours(model_dir, benchmark, args.size, config) for _ in range(args.repeats)]
        result = ours[0][0]
        ours_seconds = min(train for _, train, _ in ours)
        call_seconds = min(call for _, _, call in ours)
        print(f"{model_dir.name}: Trainer ...", file=sys.stderr)
        trainer = [run_trainer(model_dir, benchmark, args.size, config) for _ in range(args.repeats)]
        trainer_seconds = min(seconds for seconds, _ in trainer)
        trainer_runtime = min(runtime for _, runtime in trainer)
        tokens = result.tokens_seen
        flops = result.flops_per_token_measured * tokens
        rows.append({
            "model": model_dir.name, "architecture": architecture(model_dir), "params": result.n_params,
            "tokens": tokens, "ours_seconds": f"{ours_seconds:.3f}",
            "ours_tokens_per_s": f"{tokens / ours_seconds:.1f}", "ours_flop_per_s": f"{flops / ours_seconds:.4g}",
            "trainer_seconds": f"{trainer_seconds:.3f}", "trainer_tokens_per_s": f"{tokens / trainer_seconds:.1f}",
            "trainer_flop_per_s": f"{flops / trainer_seconds:.4g}",
            "speed_ratio": f"{trainer_seconds / ours_seconds:.3f}", "ours_call_seconds": f"{call_seconds:.3f}",
            "trainer_runtime_seconds": f"{trainer_runtime:.3f}",
        })

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(buffer.getvalue())
    print(f"# {benchmark.name} ({args.benchmark}), size {args.size}, {config.epochs} epochs, batch {config.batch_size}, "
          f"{args.threads} thread(s), best of {args.repeats}; ours_seconds = training loop only, "
          f"ours_call_seconds = whole finetune() call incl. load, FLOP probe and test evaluation")
    print(buffer.getvalue(), end="")
    print(f"-> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
