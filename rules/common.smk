# Shared definitions: where results go, the benchmarks and candidate models, wildcard constraints,
# and the checks the schemas cannot express (all at start, before any job runs).

import json
import os
import re
from pathlib import Path

import pandas as pd

RESULTS = f"results/{config['run_name']}"
# The software environment of every rule (used with --sdm conda).
ENV = "../environment.yml"
BENCHMARKS = list(config["benchmarks"])
# Benchmarks loaded with datasets.load_dataset; the others are built from the offline sources.
HUB_BENCHMARKS = config.get("hub_benchmarks", {})
OFFLINE_BENCHMARKS = [b for b in BENCHMARKS if b not in HUB_BENCHMARKS]
PUBLISHED = config["source"] == "published"
# Selectors that need the models themselves (NTK, weight spectra), not only their loss curves.
MODEL_TERM_METHODS = ["LensLLM-NTK-fixed", "LensLLM-NTK-fitted", "NLPMetrics"]


def config_error(message):
    raise ValueError(f"configuration: {message}")


if any(config["target"] % r for r in config["ratios"]):
    config_error(
        f"key 'ratios': {[r for r in config['ratios'] if config['target'] % r]} "
        f"do not divide the target size {config['target']}"
    )

if PUBLISHED:
    needs_models = [m for m in config["methods"] if m in MODEL_TERM_METHODS]
    if needs_models:
        config_error(
            f"key 'methods': {needs_models} need the models' weights (NTK, weight spectra), "
            "which published curves do not have; use them with source: grid"
        )
    missing_costs = [b for b in BENCHMARKS if b not in config["cost"]]
    if missing_costs:
        config_error(
            f"key 'cost' has no entry for benchmark(s) {missing_costs}: "
            "give tokens_per_example, epochs and runs_per_size for each"
        )
else:
    SIZES = sorted(config["sizes"])
    ALL_SIZES = [0, *SIZES]
    if config["target"] != SIZES[-1]:
        config_error(
            f"key 'target' ({config['target']}) must be the largest of 'sizes' {SIZES}"
        )
    bad_budgets = [r for r in config["ratios"] if config["target"] // r not in SIZES]
    if bad_budgets:
        config_error(
            f"key 'ratios': budgets target/{bad_budgets} are not among 'sizes' {SIZES}"
        )
    if SIZES[-1] > config["data"]["max_train"]:
        config_error(
            f"key 'sizes': size {SIZES[-1]} is larger than the training split "
            f"(data.max_train = {config['data']['max_train']})"
        )


def read_sheet(key, schema):
    """The rows of the sheet named by config[key] (a TSV), validated against `schema`."""
    if config[key] is None:
        return []
    path = (
        Path(workflow.basedir) / config[key]
        if not Path(config[key]).is_absolute()
        else Path(config[key])
    )
    if not path.is_file():
        config_error(f"key '{key}': no sheet at {path}")
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for column in sheet.columns:
        numeric = pd.to_numeric(sheet[column], errors="coerce")
        if len(sheet) and numeric.notna().all():
            sheet[column] = numeric
    validate(sheet, schema)
    return sheet.to_dict("records")


def candidate_models():
    """name -> {path, family, zoo, pad_token, gguf_file} for the zoo and the models sheet."""
    models = {}
    for row in read_sheet("zoo", "../workflow/schemas/zoo.schema.yaml"):
        models[row["name"]] = {
            "path": f"{RESULTS}/zoo/{row['name']}",
            "family": row["architecture"],
            "zoo": row,
            "pad_token": "",
            "gguf_file": "",
        }
    for row in read_sheet("models", "../workflow/schemas/models.schema.yaml"):
        if row["name"] in models:
            config_error(
                f"model '{row['name']}' is both in the zoo sheet and in the models sheet"
            )
        path = row["path"]
        local = Path(path).expanduser()
        if (local.is_absolute() or path.startswith(".")) and not local.exists():
            config_error(f"model '{row['name']}': no model directory at {path}")
        models[row["name"]] = {
            "path": path,
            "family": row["family"],
            "zoo": None,
            "pad_token": row.get("pad_token", ""),
            "gguf_file": row.get("gguf_file", ""),
        }
    if not models:
        config_error(
            "no candidate models: give a 'zoo' sheet, a 'models' sheet, or both"
        )
    return models


MODELS = {} if PUBLISHED else candidate_models()
# Our grid only: what the weights say (NTK, spectra) and the curvature along the curve.
GRID_ONLY_OUTPUTS = (
    []
    if PUBLISHED
    else [
        f"{RESULTS}/ntk.tsv",
        f"{RESULTS}/weight_metrics.tsv",
        *[f"{RESULTS}/figures/hessian_{b}.png" for b in BENCHMARKS],
    ]
)


def zoo_spec_json(model):
    """The zoo sheet row of `model` as the JSON spec `python -m lensllm.zoo pretrain` takes."""
    spec = dict(MODELS[model]["zoo"])
    spec["mixture"] = {
        k: float(w) for k, w in (item.split(":") for item in spec["mixture"].split(","))
    }
    return json.dumps(spec, sort_keys=True)


def model_directory(wildcards):
    """The zoo model's directory as an input; hub names and external directories need none."""
    return MODELS[wildcards.model]["path"] if MODELS[wildcards.model]["zoo"] else []


def model_load_options(model):
    """How to load `model` (pad token, GGUF file), from its sheet row, as command-line options."""
    row = MODELS[model]
    options = f" --pad-token {row['pad_token']}" if row["pad_token"] else ""
    if row["gguf_file"]:
        options += f" --gguf-file {row['gguf_file']}"
    return options


def finetune_options(wildcards):
    """The hyper-parameters of `python -m lensllm.finetune`, from config and the model's sheet row."""
    options = " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in config["finetune"].items()
        if k not in ("threads", "one_job_per_size", "gpus")
    )
    return options + model_load_options(wildcards.model)


def ntk_options(wildcards):
    """The options of `python -m lensllm.ntk`: eta is the fine-tuning learning rate, and the probe
    examples are truncated like the fine-tuning job's."""
    ntk, finetune = config["ntk"], config["finetune"]
    return (
        f"--eta {finetune['lr']} --probes {ntk['probes']} --seed {ntk['seed']}"
        f" --max-params {ntk['max_params']} --max-len-source {finetune['max_len_source']}"
        f" --max-len-target {finetune['max_len_target']}"
    ) + model_load_options(wildcards.model)


def model_terms(wildcards):
    """On our grid: each model's NTK term and weight spectra, and the optimizer steps of each run."""
    if PUBLISHED:
        return {}
    return {
        "ntk": [f"{RESULTS}/ntk/{wildcards.benchmark}/{m}.json" for m in MODELS],
        "weights": [f"{RESULTS}/weights/{m}.json" for m in MODELS],
        "runs": f"{RESULTS}/finetune_runs/{wildcards.benchmark}.tsv",
    }


wildcard_constraints:
    benchmark="|".join(BENCHMARKS),
    size=r"\d+",
    model="|".join(re.escape(m) for m in MODELS) or "[A-Za-z0-9_.-]+",


def log_path(rule_name, name="{benchmark}"):
    """The log file of one job of `rule_name`."""
    return f"{RESULTS}/logs/{rule_name}/{name}.log"
