"""The command-line options and settings the rules hand to the jobs, built from the config dict and a
candidate's sheet row (a `lensllm.pipeline.config.candidate_models` value).

Each builder returns exactly the text the rule's shell command takes (`python -m lensllm.training.finetune`,
`lensllm.probes.ntk`, `lensllm.probes.spectra`, `lensllm.training.plan`, `lensllm.training.download`,
`lensllm.training.zoo pretrain`) or the params of a script rule.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from lensllm.pipeline.config import race_ladder, rounds_flops_budget

# finetune keys that are resources or workflow settings, not options of `python -m lensllm.training.finetune`.
FINETUNE_WORKFLOW_KEYS = (
    "threads",
    "one_job_per_size",
    "gpus",
    "gpu_slots",
    "flops_per_second",
)


def zoo_spec_json(zoo_row: Mapping[str, Any]) -> str:
    """A zoo sheet row as the JSON spec `python -m lensllm.training.zoo pretrain` takes (the mixture
    "wiki:1,debsum:2" as {"wiki": 1.0, "debsum": 2.0})."""
    spec = dict(zoo_row)
    spec["mixture"] = {k: float(w) for k, w in (item.split(":") for item in spec["mixture"].split(","))}
    return json.dumps(spec, sort_keys=True)


def download_options(model: Mapping[str, Any]) -> str:
    """The revision and GGUF file of a hub model, as options of `python -m lensllm.training.download`."""
    options = f"--revision {shlex.quote(model['revision'])}" if model["revision"] else ""
    if model["gguf_file"]:
        options += f" --gguf-file {shlex.quote(model['gguf_file'])}"
    return options


def model_load_options(model: Mapping[str, Any]) -> str:
    """How to load a candidate (pad token, GGUF file, hub revision), from its sheet row, as
    command-line options."""
    options = f" --pad-token {model['pad_token']}" if model["pad_token"] else ""
    if model["gguf_file"]:
        options += f" --gguf-file {model['gguf_file']}"
    if model["revision"]:
        options += f" --revision {shlex.quote(model['revision'])}"
    return options


def gpu_slot_options(config: Mapping[str, Any], results: str, device: str) -> str:
    """On a workstation (finetune.gpu_slots > 0) a job on a GPU claims one of the slots (lock files
    in `results`/.gpu_slots)."""
    slots = config["finetune"].get("gpu_slots", 0)
    if not slots or device == "cpu":
        return ""
    return f" --gpu-slots {slots} --gpu-lock-dir {results}/.gpu_slots"


def finetune_options(config: Mapping[str, Any], results: str, model: Mapping[str, Any]) -> str:
    """The hyper-parameters of `python -m lensllm.training.finetune`, from config and the model's
    sheet row (null values are left to the job's defaults, lists given as separate words)."""
    options = " ".join(
        f"--{k.replace('_', '-')} "
        + (" ".join(shlex.quote(str(x)) for x in v) if isinstance(v, list) else str(v))
        for k, v in config["finetune"].items()
        if k not in FINETUNE_WORKFLOW_KEYS and v is not None
    )
    device = config["finetune"].get("device", "auto")
    return options + gpu_slot_options(config, results, device) + model_load_options(model)


def ntk_options(config: Mapping[str, Any], results: str, model: Mapping[str, Any]) -> str:
    """The options of `python -m lensllm.probes.ntk`: eta is the fine-tuning learning rate, and the
    probe examples are truncated like the fine-tuning job's."""
    ntk, finetune = config["ntk"], config["finetune"]
    return (
        f"--eta {finetune['lr']} --probes {ntk['probes']} --seed {ntk['seed']}"
        f" --max-params {ntk['max_params']} --max-len-source {finetune['max_len_source']}"
        f" --max-len-target {finetune['max_len_target']}"
        f" --device {ntk.get('device', 'auto')} --precision {finetune.get('precision', 'fp32')}"
        + gpu_slot_options(config, results, ntk.get("device", "auto"))
        + model_load_options(model)
    )


def spectra_options(config: Mapping[str, Any], results: str, model: Mapping[str, Any]) -> str:
    """The options of `python -m lensllm.probes.spectra`: how to load the model, and where (ntk.device)."""
    device = config["ntk"].get("device", "auto")
    return model_load_options(model) + f" --device {device}" + gpu_slot_options(config, results, device)


def plan_options(config: Mapping[str, Any], models: Mapping[str, Mapping[str, Any]], sizes: Sequence[int]) -> str:
    """The options of `python -m lensllm.training.plan`: budget (select.flops_budget), candidate
    sizes, the fine-tuning's epochs and truncation, N, and each candidate as NAME=PATH (and its GGUF
    file)."""
    finetune = config["finetune"]
    names = " ".join(shlex.quote(f"{name}={model['path']}") for name, model in models.items())
    gguf = " ".join(shlex.quote(f"{name}={model['gguf_file']}") for name, model in models.items() if model["gguf_file"])
    return (
        f"--flops-budget {float(config['select']['flops_budget'])!r} --sizes {' '.join(map(str, sizes))}"
        f" --epochs {finetune['epochs']} --max-len-source {finetune['max_len_source']}"
        f" --max-len-target {finetune['max_len_target']}"
        f" --full-size {config['select']['full_size']} --model {names}"
        + (f" --gguf-file {gguf}" if gguf else "")
    )


def recommend_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The select-mode settings every recommendation job takes."""
    choice = config["select"]
    return {
        "full_size": choice["full_size"],
        "budget": choice.get("budget"),  # None with select.flops_budget: the plan says
        "methods": choice["methods"],
        "pick_method": choice["pick_method"],
        "settle_p_best": choice["settle_p_best"],
        "settings": config["selection"],
        "uncertainty": config.get("uncertainty", {}),
    }


def race_params(config: Mapping[str, Any], benchmarks: int) -> dict[str, Any]:
    """The settings of select mode's rounds (select.max_rounds > 0) every round job takes: round 0's
    budget, N, the sizes the rounds may buy, the FLOPs budget (a total over every round and
    benchmark) and how many benchmarks share it, AtS's k and delta, and the knobs of
    `lensllm.selection.RaceSettings`."""
    choice, uncertainty = config["select"], config.get("uncertainty", {})
    return {
        "budget": choice["budget"],
        "full_size": choice["full_size"],
        "ladder": race_ladder(config),
        "flops_budget": rounds_flops_budget(config),
        "benchmarks": benchmarks,
        "k": config["selection"]["ats_k"],
        "delta": config["selection"]["ats_delta"],
        "settings": {
            "first": 1,
            "contenders": choice.get("contenders", 3),
            "margin": choice.get("margin", 0.2),
            "reach": choice.get("reach"),
            "max_rounds": choice["max_rounds"],
            "settle_p_best": choice["settle_p_best"],
            "shared": choice.get("shared", 0.5),
            "backtests": uncertainty.get("backtests", 3),
            "curvature_window": uncertainty.get("curvature_window", 0.5),
        },
    }
