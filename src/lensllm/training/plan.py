"""Planning the fine-tunes of a FLOPs budget: which training sizes a selection can afford.

In select mode with `select.flops_budget` F (the total fine-tuning FLOPs of the whole selection on
one benchmark, every candidate together), the sizes are not given but chosen here, before any
fine-tune runs. Each candidate m's fine-tune on s examples is bounded from above by

    FLOPs(m, s) = (6 * N_m * T_m + attention_m) * epochs * s

(forward + backward, Kaplan et al.; `lensllm.curves.cost`), where
- N_m is the number of parameters that take part in matrix products (`n_params_matmul`: every
  parameter outside the embedding tables, plus the output projection, as the fine-tuning job's
  `flops_analytic` counts them; the plain parameter count `n_params` is recorded beside it), counted
  on the model built from its configuration on torch's meta device (no weights are read);
- T_m is the token positions of the longest training example with m's tokenizer and the fine-tuning
  truncation (`lensllm.training.tokens.encode_examples`), among the first max(sizes) examples of the
  benchmark's seeded training order (every candidate subset is a prefix of them): a batch is padded
  to its longest row, so no training position costs more. For an encoder-decoder model, whose
  encoder parameters see only the source positions and its decoder parameters (output projection
  included) only the target positions, T_m = (N_enc * longest source + N_dec * longest target) / N_m;
- attention's own products, which 6 * N * T leaves out, are added per example: Q K^T and A V cost
  12 * d * T^2 per layer over a sequence of T positions (forward and backward, d = heads x head
  width), so 12 * d * L * T^2 for L decoder layers, and for an encoder-decoder
  12 * d * (L_enc * S^2 + L_dec * (T^2 + T * S)) with S source and T target positions (self- and
  cross-attention), at the longest example's S and T.

The budget b is the largest of `sizes` such that  sum over the candidates m and the sizes s <= b of
FLOPs(m, s) <= F, with at least two training sizes (a curve); a F too small for the two smallest
sizes is an error that names the key and what they cost. Every candidate is then fine-tuned at
every size up to b (and zero-shot, size 0, which costs no training FLOPs).

The bound is what the plan chooses by. What the selection is charged afterwards (the
recommendation's "FLOPs spent") are the FLOPs measured on the fine-tuning jobs themselves
(`lensllm.training.finetune`: `flops_measured`); being bounded from above, they stay within F, by as much as
the examples are shorter than the longest.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lensllm.atomic import write_text
from lensllm.training.cli import exit_on_error
from lensllm.training.tokens import add_benchmark_options, read_benchmark_option

if TYPE_CHECKING:
    from lensllm.data.benchmark import Benchmark

LOG = logging.getLogger(__name__)
FLOPS_BUDGET_KEY = "select.flops_budget"


class PlanError(ValueError):
    """A FLOPs budget that cannot be planned; the message names the key and what it would take."""


@dataclass(frozen=True)
class CandidateCost:
    """What one candidate's fine-tune costs per example on a benchmark (see the module docstring)."""

    model: str
    n_params: int
    n_params_matmul: int
    tokens_per_example: float
    attention_flops: float = 0.0

    def finetune_flops(self, size: int, epochs: int) -> float:
        """(6 * n_params_matmul * tokens_per_example + attention_flops) * epochs * size."""
        return (6.0 * self.n_params_matmul * self.tokens_per_example + self.attention_flops) * epochs * size


@dataclass(frozen=True)
class SelectionPlan:
    """The fine-tunes a FLOPs budget buys on one benchmark: every candidate at `sizes` (up to `budget`).

    `flops[model][size]` is the estimated FLOPs of each candidate's fine-tune at every candidate size
    (chosen or not), `total_flops` the estimated sum over the candidates and the chosen sizes.
    """

    benchmark: str
    flops_budget: float
    budget: int
    sizes: tuple[int, ...]
    candidate_sizes: tuple[int, ...]
    epochs: int
    costs: tuple[CandidateCost, ...]
    flops: Mapping[str, Mapping[int, float]]
    total_flops: float

    def cumulative_flops(self, budget: int) -> float:
        """The estimated FLOPs of fine-tuning every candidate at every candidate size up to `budget`."""
        return sum(f for per_size in self.flops.values() for s, f in per_size.items() if s <= budget)

    def to_json(self) -> dict:
        """The plan as a JSON-ready dict (sizes as string keys under `flops`)."""
        return {
            "benchmark": self.benchmark,
            "flops_budget": self.flops_budget,
            "budget": self.budget,
            "sizes": list(self.sizes),
            "candidate_sizes": list(self.candidate_sizes),
            "epochs": self.epochs,
            "total_flops": self.total_flops,
            "cumulative_flops": {str(b): self.cumulative_flops(b) for b in self.candidate_sizes},
            "models": {c.model: {"n_params": c.n_params, "n_params_matmul": c.n_params_matmul,
                                 "tokens_per_example": c.tokens_per_example, "attention_flops": c.attention_flops}
                       for c in self.costs},
            "flops": {m: {str(s): f for s, f in per_size.items()} for m, per_size in self.flops.items()},
            "formula": "(6 * n_params_matmul * tokens_per_example + attention_flops) * epochs * size",
        }


def plan_selection(costs: Sequence[CandidateCost], sizes: Sequence[int], epochs: int, flops_budget: float,
                   benchmark: str = "", full_size: int | None = None) -> SelectionPlan:
    """The largest budget b of `sizes` whose fine-tunes (every candidate, every size <= b) fit in
    `flops_budget` by the estimate of the module docstring; at least two training sizes.

    Raises `PlanError` naming `select.flops_budget` when even the two smallest sizes do not fit, and
    naming `select.full_size` when `full_size` is given and not above the chosen budget."""
    candidate_sizes = tuple(sorted(set(int(s) for s in sizes)))
    if len(candidate_sizes) < 2 or candidate_sizes[0] < 1:
        raise PlanError(f"sizes {list(sizes)}: a plan needs at least two training sizes >= 1")
    if not costs:
        raise PlanError("a plan needs at least one candidate model")
    if not flops_budget > 0:
        raise PlanError(f"key '{FLOPS_BUDGET_KEY}' ({flops_budget}) must be a positive number of FLOPs")
    flops = {c.model: {s: c.finetune_flops(s, epochs) for s in candidate_sizes} for c in costs}

    def cumulative(b: int) -> float:
        return sum(f for per_size in flops.values() for s, f in per_size.items() if s <= b)

    affordable = [b for b in candidate_sizes[1:] if cumulative(b) <= flops_budget]
    if not affordable:
        two = cumulative(candidate_sizes[1])
        where = f" for {benchmark}" if benchmark else ""
        raise PlanError(
            f"key '{FLOPS_BUDGET_KEY}' ({flops_budget:.3g} FLOPs) is too small{where}: "
            f"fine-tuning the {len(costs)} candidates at the two smallest sizes {list(candidate_sizes[:2])} "
            f"costs about {two:.3g} FLOPs (6 x params x tokens per example x {epochs} epochs x examples); "
            f"give at least {two:.3g}, or smaller 'sizes'"
        )
    budget = affordable[-1]
    if full_size is not None and full_size <= budget:
        raise PlanError(f"key 'select.full_size' ({full_size}) must be larger than the budget {budget} that "
                        f"{FLOPS_BUDGET_KEY} = {flops_budget:.3g} buys: nothing would be left to predict")
    chosen = tuple(s for s in candidate_sizes if s <= budget)
    return SelectionPlan(benchmark, float(flops_budget), budget, chosen, candidate_sizes, epochs, tuple(costs),
                         flops, cumulative(budget))


def load_config(path: str, gguf_file: str | None = None):
    """The configuration of the model at `path` (anything `from_pretrained` accepts), or an error naming it."""
    from transformers import AutoConfig

    from lensllm.training.loading import ModelLoadError, resolve_model_path

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        return AutoConfig.from_pretrained(resolve_model_path(path), **extra)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"model {path!r}: cannot load its configuration with from_pretrained: {err}") from err


def count_parameters(path: str, gguf_file: str | None = None) -> tuple[int, int, int | None]:
    """(all parameters, parameters in matrix products, those of the encoder or None for a decoder-only
    model) of the model at `path` (anything `from_pretrained` accepts, `pkg://NAME` included), built
    from its configuration on torch's meta device: no weights are read or allocated."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from lensllm.training.flops import matmul_params, non_embedding_params

    config = load_config(path, gguf_file)
    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    with torch.device("meta"):
        model = auto.from_config(config)
    encoder = non_embedding_params(model.get_encoder()) if config.is_encoder_decoder else None
    return sum(p.numel() for p in model.parameters()), matmul_params(model), encoder


def token_positions(path: str, benchmark: Benchmark, examples: int, max_len_source: int, max_len_target: int,
                    is_encoder_decoder: bool, gguf_file: str | None = None) -> tuple[float, float]:
    """The token positions of the longest (inputs, decoder targets; 0 for a decoder-only model) of the
    first `examples` training examples of `benchmark` with the tokenizer at `path`, encoded and
    truncated as the fine-tuning job encodes them: what a padded batch can cost per row at most."""
    from transformers import AutoTokenizer

    from lensllm.data.benchmark import training_subset
    from lensllm.training.loading import LoadedModel, ModelLoadError, resolve_model_path
    from lensllm.training.settings import FinetuneConfig
    from lensllm.training.tokens import encode_examples

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(path), **extra)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"model {path!r}: cannot load its tokenizer with from_pretrained: {err}") from err
    if tokenizer.eos_token_id is None:
        raise ModelLoadError(f"model {path!r}: its tokenizer has no eos token")
    rows = encode_examples(training_subset(benchmark, examples), LoadedModel(path, None, tokenizer, is_encoder_decoder),
                           benchmark.kind, FinetuneConfig(max_len_source=max_len_source, max_len_target=max_len_target))
    if not rows:
        raise PlanError(f"benchmark {benchmark.name!r}: no training examples to count tokens on")
    targets = max(len(labels) for _, labels in rows) if is_encoder_decoder else 0
    return float(max(len(inputs) for inputs, _ in rows)), float(targets)


def attention_flops(config, source: float, target: float) -> float:
    """Attention's products per example (forward and backward) of a model of `config` on `source`
    input positions (and `target` decoder positions for an encoder-decoder): 12 * d * L * T^2, or
    12 * d * (L_enc * S^2 + L_dec * (T^2 + T * S)), with d = heads x head width (module docstring)."""
    heads = config.num_attention_heads
    width = heads * (getattr(config, "head_dim", None) or getattr(config, "d_kv", None) or config.hidden_size // heads)
    if not config.is_encoder_decoder:
        return 12.0 * width * config.num_hidden_layers * source**2
    decoder_layers = getattr(config, "num_decoder_layers", None) or config.num_hidden_layers
    return 12.0 * width * (config.num_hidden_layers * source**2 + decoder_layers * (target**2 + target * source))


def measure_candidate(name: str, path: str, benchmark: Benchmark, examples: int, max_len_source: int,
                      max_len_target: int, gguf_file: str | None = None) -> CandidateCost:
    """The parameter counts, tokens per example and attention FLOPs of candidate `name` (model at `path`)."""
    n_params, n_matmul, n_encoder = count_parameters(path, gguf_file)
    inputs, targets = token_positions(path, benchmark, examples, max_len_source, max_len_target,
                                      n_encoder is not None, gguf_file)
    attention = attention_flops(load_config(path, gguf_file), inputs, targets)
    if n_encoder is None:
        return CandidateCost(name, n_params, n_matmul, inputs, attention)
    weighted = (n_encoder * inputs + (n_matmul - n_encoder) * targets) / n_matmul
    return CandidateCost(name, n_params, n_matmul, weighted, attention)


def write_plan(plan: SelectionPlan, path: str | os.PathLike) -> None:
    """Write the plan as JSON to `path` atomically."""
    write_text(path, json.dumps(plan.to_json(), indent=2) + "\n")


def read_plan(path: str | os.PathLike) -> SelectionPlan:
    """The plan written by `write_plan`."""
    data = json.loads(Path(path).read_text())
    costs = tuple(CandidateCost(m, v["n_params"], v["n_params_matmul"], v["tokens_per_example"],
                                v.get("attention_flops", 0.0)) for m, v in data["models"].items())
    flops = {m: {int(s): f for s, f in per_size.items()} for m, per_size in data["flops"].items()}
    return SelectionPlan(data["benchmark"], data["flops_budget"], data["budget"], tuple(data["sizes"]),
                         tuple(data["candidate_sizes"]), data["epochs"], costs, flops, data["total_flops"])


def plan_summary(plan: SelectionPlan) -> str:
    """One sentence (Markdown) saying which sizes the FLOPs budget bought."""
    sizes = ", ".join(str(s) for s in plan.sizes)
    larger = [s for s in plan.candidate_sizes if s > plan.budget]
    beyond = (f"; the next size, {larger[0]}, would have cost about {plan.cumulative_flops(larger[0]):.2e} in all"
              if larger else "; the largest of the sizes offered")
    return (f"The FLOPs budget `select.flops_budget` = {plan.flops_budget:.2e} bought fine-tunes of every candidate "
            f"at {sizes} examples (budget {plan.budget}{beyond}), estimated at {plan.total_flops:.2e} FLOPs "
            f"(an upper bound: (6 x params x tokens of the longest example + attention) x epochs x examples); "
            "the FLOPs below are those measured on the jobs.")


def _pairs(values: Sequence[str], option: str, parser: argparse.ArgumentParser) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            parser.error(f"{option} {value!r}: expected NAME=VALUE")
        if name in pairs:
            parser.error(f"{option}: {name!r} given twice")
        pairs[name] = rest
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure every candidate, choose the budget, write the plan JSON."""
    from lensllm.training.loading import ModelLoadError

    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    models = _pairs(args.model, "--model", parser)
    gguf = _pairs(args.gguf_file, "--gguf-file", parser)
    unknown = sorted(set(gguf) - set(models))
    if unknown:
        parser.error(f"--gguf-file for {unknown}, which are not among the --model names {list(models)}")
    if args.epochs < 1 or args.max_len_source < 1 or args.max_len_target < 1:
        parser.error("--epochs, --max-len-source and --max-len-target must be >= 1")
    benchmark = read_benchmark_option(parser, args)
    largest = max(args.sizes)
    if largest > len(benchmark.train):
        parser.error(f"--sizes: {largest} is larger than the {len(benchmark.train)} training examples of "
                     f"{benchmark.name!r} ({args.benchmark})")
    with exit_on_error(ModelLoadError, PlanError):
        costs = [measure_candidate(name, path, benchmark, largest, args.max_len_source, args.max_len_target,
                                   gguf.get(name)) for name, path in models.items()]
        for c in costs:
            LOG.info("%s: %d parameters (%d in matrix products), %.1f tokens per example", c.model, c.n_params,
                     c.n_params_matmul, c.tokens_per_example)
        plan = plan_selection(costs, args.sizes, args.epochs, args.flops_budget, benchmark.name, args.full_size)
    for b in plan.candidate_sizes:
        LOG.info("budget %d: every candidate at the sizes up to it costs about %.3g FLOPs%s", b,
                 plan.cumulative_flops(b), " <- chosen" if b == plan.budget else "")
    LOG.info("%s: %s", benchmark.name, plan_summary(plan))
    write_plan(plan, args.out)
    return 0


def _parser() -> argparse.ArgumentParser:
    """The options of `main`; the fine-tuning's defaults are `FinetuneConfig`'s."""
    from lensllm.training.settings import FinetuneConfig

    parser = argparse.ArgumentParser(prog="python -m lensllm.training.plan", description=__doc__.splitlines()[0])
    parser.add_argument("--flops-budget", type=float, required=True,
                        help="total fine-tuning FLOPs of the selection on this benchmark (select.flops_budget)")
    parser.add_argument("--sizes", type=int, nargs="+", required=True, help="the candidate training sizes")
    parser.add_argument("--epochs", type=int, default=FinetuneConfig().epochs)
    add_benchmark_options(parser)
    parser.add_argument("--model", nargs="+", action="extend", required=True, metavar="NAME=PATH",
                        help="each candidate: its name and anything from_pretrained accepts")
    parser.add_argument("--gguf-file", nargs="+", action="extend", default=[], metavar="NAME=FILE",
                        help="a GGUF file inside candidate NAME's directory")
    parser.add_argument("--full-size", type=int, help="select.full_size: the chosen budget must be below it")
    parser.add_argument("--out", required=True, help="the plan JSON to write")
    return parser


if __name__ == "__main__":
    sys.exit(main())
