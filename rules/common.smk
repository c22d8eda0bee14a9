# Shared definitions: where results go, the benchmarks and candidate models, wildcard constraints,
# and the checks the schemas cannot express (all at start, before any job runs).

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pandas as pd
from snakemake.exceptions import WorkflowError

RESULTS = f"results/{config['run_name']}"
# The software environment of every rule (used with --sdm conda). It installs lensllm from
# ${LENSLLM_ROOT}, which pip expands from the environment conda is started with: this checkout.
ENV = "../environment.yml"
os.environ.update(LENSLLM_ROOT=workflow.basedir)
BENCHMARKS = list(config["benchmarks"])
PUBLISHED = config["source"] == "published"
# Select mode: recommend a model for data of size select.full_size, fine-tuning up to the budget only.
SELECT = config.get("mode", "evaluate") == "select"
# Select mode with select.flops_budget (total fine-tuning FLOPs per benchmark, every candidate
# together): every size of 'sizes' is a candidate and the checkpoint plan_selection chooses the budget.
FLOPS_BUDGET = config.get("select", {}).get("flops_budget") if SELECT else None
FLOPS_PLAN = FLOPS_BUDGET is not None
# Benchmarks loaded with datasets.load_dataset from a hub id or a directory, and the user's own
# files; the others are built from the offline sources (lensllm.data.benchmark's builders).
HUB_BENCHMARKS = config.get("hub_benchmarks", {})
USER_DATA = config.get("user_data", {})
OFFLINE_BENCHMARK_NAMES = ["wiki", "debsum", "instruct"]
OFFLINE_BENCHMARKS = [
    b for b in BENCHMARKS if b not in HUB_BENCHMARKS and b not in USER_DATA
]
# The zoo is pre-trained on every offline corpus, without the test split of any offline benchmark,
# whichever benchmarks the run fine-tunes on: the same sheet gives the same models in every run.
ZOO_CORPORA = OFFLINE_BENCHMARK_NAMES
# Selectors that need the models themselves (NTK, weight spectra), not only their loss curves.
MODEL_TERM_METHODS = ["LensLLM-NTK-fixed", "LensLLM-NTK-fitted", "NLPMetrics"]


def config_error(message):
    raise ValueError(f"configuration: {message}")


def check_evaluation_grid(sizes):
    """Evaluation: the target is the largest size and every budget target/ratio is a size."""
    if any(config["target"] % r for r in config["ratios"]):
        config_error(
            f"key 'ratios': {[r for r in config['ratios'] if config['target'] % r]} "
            f"do not divide the target size {config['target']}"
        )
    if sizes is None:
        return
    if config["target"] != sizes[-1]:
        config_error(
            f"key 'target' ({config['target']}) must be the largest of 'sizes' {sizes}"
        )
    bad_budgets = [r for r in config["ratios"] if config["target"] // r not in sizes]
    if bad_budgets:
        config_error(
            f"key 'ratios': budgets target/{bad_budgets} are not among 'sizes' {sizes}"
        )


def selection_sizes():
    """Select mode: the sizes up to the budget (select.budget, a size of 'sizes'); with
    select.flops_budget instead, every size of 'sizes' (the plan_selection job picks the budget).
    """
    choice, sizes = config["select"], sorted(config["sizes"])
    given = [k for k in ("budget", "flops_budget") if choice.get(k) is not None]
    if len(given) != 1:
        config_error(
            "give exactly one of 'select.budget' (the largest training subset per candidate) and "
            "'select.flops_budget' (the fine-tuning FLOPs of the whole selection per benchmark), the "
            f"other null or absent; {'both are' if given else 'neither is'} given"
            + (
                " (a file laid over config/select.yaml inherits its budget: set budget: null)"
                if given
                else ""
            )
        )
    if FLOPS_PLAN:
        try:
            budget = float(FLOPS_BUDGET)
        except ValueError:
            budget = -1.0
        if not budget > 0:
            config_error(
                f"key 'select.flops_budget' ({FLOPS_BUDGET!r}) must be a positive number of FLOPs"
            )
        if choice["full_size"] <= sizes[-1]:
            config_error(
                f"key 'select.full_size' ({choice['full_size']}) must be larger than every size of "
                f"'sizes' {sizes}: with select.flops_budget any of them may become the budget"
            )
        return sizes
    if choice["budget"] not in sizes:
        config_error(
            f"key 'select.budget' ({choice['budget']}) must be one of 'sizes' {sizes}"
        )
    if choice["full_size"] <= choice["budget"]:
        config_error(
            f"key 'select.full_size' ({choice['full_size']}) must be larger than the budget "
            f"select.budget = {choice['budget']}: nothing would be left to predict"
        )
    kept = [s for s in sizes if s <= choice["budget"]]
    if len(kept) < 2:
        config_error(
            f"key 'select.budget' ({choice['budget']}) leaves fewer than two training sizes of "
            f"'sizes' {sizes}; the laws need a curve"
        )
    return kept


def check_benchmark_names():
    """Every benchmark is an offline one, a hub_benchmarks entry or a user_data entry."""
    known = [*OFFLINE_BENCHMARK_NAMES, *HUB_BENCHMARKS, *USER_DATA]
    unknown = [b for b in BENCHMARKS if b not in known]
    if unknown:
        config_error(
            f"key 'benchmarks': unknown benchmark(s) {unknown}; known: {known} (the offline "
            "ones, and the names given under 'hub_benchmarks' and 'user_data')"
        )


def conda_jobs():
    """Whether the jobs run in conda environments (--sdm conda), not with the `python` on PATH."""
    from snakemake_interface_executor_plugins.settings import DeploymentMethod

    return DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method


def check_job_python():
    """Shell rules run `python -m lensllm...`: that python must import lensllm (unless conda
    environments are deployed for the jobs)."""
    if conda_jobs():
        return
    python = shutil.which("python")
    found = python and subprocess.run(
        [python, "-c", "import lensllm"], capture_output=True
    )
    if not found or found.returncode != 0:
        config_error(
            f"the jobs run `python -m lensllm...`, but the python on PATH ({python or 'none'}) "
            "cannot import lensllm: activate the environment first (. .venv/bin/activate) "
            "or use --sdm conda"
        )


def user_data_spec(name):
    """The keyword arguments of lensllm.data.benchmark.load_user_benchmark for user_data entry `name`."""
    spec = {"test_size": config["data"]["test_size"], **USER_DATA[name]}
    return {
        **spec,
        "name": name,
        "max_train": config["data"]["max_train"],
        "min_train": SIZES[-1],
        "min_train_key": "select.budget" if SELECT and not FLOPS_PLAN else "sizes",
        "seed": config["data"]["seed"],
    }


def check_user_data():
    """Load each user data file as its build job will, before any job runs (skipped once its
    benchmark file is built and newer than the data files, and left to the build job when the jobs
    run in conda environments), and stop on the first bad one.
    """
    for name in BENCHMARKS:
        if name not in USER_DATA:
            continue
        files = [USER_DATA[name]["train_file"], USER_DATA[name].get("test_file")]
        for key, path in zip(("train_file", "test_file"), files):
            if path is not None and not Path(path).is_file():
                config_error(f"key 'user_data.{name}.{key}': no file at {path}")
        built = Path(f"{RESULTS}/data/{name}.jsonl")
        if (
            conda_jobs()
            or built.is_file()
            and all(built.stat().st_mtime > Path(p).stat().st_mtime for p in files if p)
        ):
            continue
        result = subprocess.run(
            [
                "python",
                "-m",
                "lensllm.data.benchmark",
                "check-user",
                json.dumps(user_data_spec(name)),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            config_error(
                f"key 'user_data.{name}': {result.stderr.strip().splitlines()[-1]}"
            )


if PUBLISHED:
    check_evaluation_grid(None)
    if SELECT:
        config_error(
            "key 'mode': select fine-tunes the candidates, so it needs source: grid"
        )
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
    check_benchmark_names()
    if SELECT:
        SIZES = selection_sizes()
    else:
        SIZES = sorted(config["sizes"])
        check_evaluation_grid(SIZES)
    ALL_SIZES = [0, *SIZES]
    if SIZES[-1] > config["data"]["max_train"]:
        config_error(
            f"key 'sizes': size {SIZES[-1]} is larger than the training split "
            f"(data.max_train = {config['data']['max_train']})"
        )
    if "Adaptive" in config["methods"] and config["selection"].get("adaptive_prior"):
        config_error(
            "key 'selection.adaptive_prior': the prior runs on published curves only; on the grid "
            "Adaptive's rounds are jobs outside the analysis group, which cannot read its tables"
        )
    check_job_python()
    check_user_data()


def repository_path(path):
    """A path of the configuration: relative ones are relative to the repository (the Snakefile)."""
    return Path(path) if Path(path).is_absolute() else Path(workflow.basedir) / path


def read_sheet(key, schema):
    """The rows of the sheet named by config[key] (a TSV), validated against `schema`."""
    if config[key] is None:
        return []
    path = repository_path(config[key])
    if not path.is_file():
        config_error(f"key '{key}': no sheet at {path}")
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for column in sheet.columns:
        numeric = pd.to_numeric(sheet[column], errors="coerce")
        if len(sheet) and numeric.notna().all():
            sheet[column] = numeric
    try:
        validate(sheet, schema)
    except WorkflowError as err:
        config_error(
            f"key '{key}': sheet {path}: {err} (rows counted from 0 below the header)"
        )
    return sheet.to_dict("records")


def candidate_models():
    """name -> {path, family, zoo, pad_token, gguf_file, revision} for the zoo and the models sheet."""
    models = {}
    for row in read_sheet("zoo", "../workflow/schemas/zoo.schema.yaml"):
        models[row["name"]] = {
            "path": f"{RESULTS}/zoo/{row['name']}",
            "family": row["architecture"],
            "zoo": row,
            "pad_token": "",
            "gguf_file": "",
            "revision": "",
        }
    for row in read_sheet("models", "../workflow/schemas/models.schema.yaml"):
        if row["name"] in models:
            config_error(
                f"model '{row['name']}' is both in the zoo sheet ({config['zoo']}) and in the models sheet ({config['models']})"
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
            "revision": str(row.get("revision", "")),
        }
    if not models:
        config_error(
            "no candidate models: give a 'zoo' sheet, a 'models' sheet, or both"
        )
    if len(models) < 2:
        config_error(
            f"keys 'zoo' and 'models': only one candidate model ({list(models)[0]}); "
            "choosing needs at least two"
        )
    return models


MODELS = {} if PUBLISHED else candidate_models()
# The raw sources to fetch: those of the offline benchmarks, and every corpus when there is a zoo.
FETCHED_SOURCES = [
    *OFFLINE_BENCHMARKS,
    *[
        c
        for c in ZOO_CORPORA
        if c not in OFFLINE_BENCHMARKS and any(m["zoo"] for m in MODELS.values())
    ],
]


def benchmark_inputs(wildcards):
    """What a benchmark is built from: its fetched sources, the user's files, or nothing (hub)."""
    if wildcards.benchmark in USER_DATA:
        spec = USER_DATA[wildcards.benchmark]
        return [p for p in (spec["train_file"], spec.get("test_file")) if p]
    if wildcards.benchmark in HUB_BENCHMARKS:
        return []
    return f"{config['sources_dir']}/{wildcards.benchmark}.fetched"


# Our grid only: what the weights say (NTK, spectra) and the curvature along the curve.
# The PAC-Bayes bound along the grid's curves (rules/bound.smk), when the jobs measure it.
BOUND = not PUBLISHED and config["finetune"].get("bound_batches", 4) > 0
BOUND_OUTPUTS = [
    f"{RESULTS}/bound.tsv",
    f"{RESULTS}/bound_correlation.tsv",
    f"{RESULTS}/bound.md",
    *[f"{RESULTS}/figures/bound_{b}.png" for b in BENCHMARKS],
]
GRID_ONLY_OUTPUTS = (
    []
    if PUBLISHED
    else [
        f"{RESULTS}/ntk.tsv",
        f"{RESULTS}/weight_metrics.tsv",
        *[f"{RESULTS}/figures/hessian_{b}.png" for b in BENCHMARKS],
        *(BOUND_OUTPUTS if BOUND else []),
    ]
)


def zoo_spec_json(model):
    """The zoo sheet row of `model` as the JSON spec `python -m lensllm.training.zoo pretrain` takes."""
    spec = dict(MODELS[model]["zoo"])
    spec["mixture"] = {
        k: float(w) for k, w in (item.split(":") for item in spec["mixture"].split(","))
    }
    return json.dumps(spec, sort_keys=True)


def is_hub_model(model):
    """Whether candidate `model` comes from the hub: not the zoo, not an installed package
    (pkg://), not a directory on this machine."""
    row = MODELS[model]
    path = row["path"]
    local = Path(path).expanduser()
    return not (
        row["zoo"]
        or path.startswith("pkg://")
        or local.is_absolute()
        or path.startswith(".")
        or local.exists()
    )


def model_directory(wildcards):
    """What loading a model needs first: the zoo model's directory, a hub model's download record
    (rule download_models); external directories and packages need nothing."""
    if MODELS[wildcards.model]["zoo"]:
        return MODELS[wildcards.model]["path"]
    if is_hub_model(wildcards.model):
        return f"{RESULTS}/downloads/{wildcards.model}.json"
    return []


def download_options(model):
    """The revision and GGUF file of a hub model, as options of `python -m lensllm.training.download`."""
    row = MODELS[model]
    options = f"--revision {shlex.quote(row['revision'])}" if row["revision"] else ""
    if row["gguf_file"]:
        options += f" --gguf-file {shlex.quote(row['gguf_file'])}"
    return options


def model_load_options(model):
    """How to load `model` (pad token, GGUF file, hub revision), from its sheet row, as command-line
    options."""
    row = MODELS[model]
    options = f" --pad-token {row['pad_token']}" if row["pad_token"] else ""
    if row["gguf_file"]:
        options += f" --gguf-file {row['gguf_file']}"
    if row["revision"]:
        options += f" --revision {shlex.quote(row['revision'])}"
    return options


# finetune keys that are resources or workflow settings, not options of `python -m lensllm.training.finetune`.
FINETUNE_WORKFLOW_KEYS = (
    "threads",
    "one_job_per_size",
    "gpus",
    "gpu_slots",
    "flops_per_second",
)


def gpu_slot_options(device):
    """On a workstation (finetune.gpu_slots > 0) a job on a GPU claims one of the slots."""
    slots = config["finetune"].get("gpu_slots", 0)
    if not slots or device == "cpu":
        return ""
    return f" --gpu-slots {slots} --gpu-lock-dir {RESULTS}/.gpu_slots"


def finetune_options(wildcards):
    """The hyper-parameters of `python -m lensllm.training.finetune`, from config and the model's sheet row
    (null values are left to the job's defaults, lists given as separate words)."""
    options = " ".join(
        f"--{k.replace('_', '-')} "
        + (" ".join(shlex.quote(str(x)) for x in v) if isinstance(v, list) else str(v))
        for k, v in config["finetune"].items()
        if k not in FINETUNE_WORKFLOW_KEYS and v is not None
    )
    device = config["finetune"].get("device", "auto")
    return options + gpu_slot_options(device) + model_load_options(wildcards.model)


def ntk_options(wildcards):
    """The options of `python -m lensllm.probes.ntk`: eta is the fine-tuning learning rate, and the probe
    examples are truncated like the fine-tuning job's."""
    ntk, finetune = config["ntk"], config["finetune"]
    return (
        (
            f"--eta {finetune['lr']} --probes {ntk['probes']} --seed {ntk['seed']}"
            f" --max-params {ntk['max_params']} --max-len-source {finetune['max_len_source']}"
            f" --max-len-target {finetune['max_len_target']}"
            f" --device {ntk.get('device', 'auto')} --precision {finetune.get('precision', 'fp32')}"
        )
        + gpu_slot_options(ntk.get("device", "auto"))
        + model_load_options(wildcards.model)
    )


def model_terms(wildcards):
    """On our grid: each model's NTK term and weight spectra, and the optimizer steps of each run;
    in every mode the FLOPs of each fine-tune, when Adaptive spends by them."""
    flops = (
        {"flops": f"{RESULTS}/finetune_flops/{wildcards.benchmark}.tsv"}
        if "Adaptive" in config.get("methods", [])
        else {}
    )
    if PUBLISHED:
        return flops
    return flops | {
        "ntk": [f"{RESULTS}/ntk/{wildcards.benchmark}/{m}.json" for m in MODELS],
        "weights": [f"{RESULTS}/weights/{m}.json" for m in MODELS],
        "runs": f"{RESULTS}/finetune_runs/{wildcards.benchmark}.tsv",
    }


wildcard_constraints:
    benchmark="|".join(dict.fromkeys([*BENCHMARKS, *ZOO_CORPORA])),
    size=r"\d+",
    model="|".join(re.escape(m) for m in MODELS) or "[A-Za-z0-9_.-]+",


def adaptive_rounds(wildcards):
    """On our grid, Adaptive's selections come from its real rounds (rules/adaptive.smk); on
    published curves it runs in select_models, with its prior's library when it has one.
    """
    if "Adaptive" not in config.get("methods", []):
        return {}
    if PUBLISHED:
        return adaptive_library(wildcards)
    return {"adaptive": f"{RESULTS}/adaptive/{wildcards.benchmark}/selections.json"}


def adaptive_budgets():
    """The budgets of the evaluation: target / ratio."""
    return [config["target"] // r for r in config["ratios"]]


def adaptive_round0(wildcards):
    """The fine-tunes of round 0 of every budget: round 0 of budget b is every size <= b /
    first_round (at least the two smallest), so their union is round 0 of the largest budget.
    """
    first = config["selection"].get("adaptive_first_round", 2)
    sizes = [s for s in SIZES if s * first <= max(adaptive_budgets())] or SIZES[:2]
    return [
        f"{RESULTS}/finetune/{wildcards.benchmark}/{m}/{s}.json"
        for m in MODELS
        for s in sizes
    ]


def adaptive_bought(wildcards):
    """The fine-tunes round 1 bought: known once the checkpoint has run."""
    plan = checkpoints.adaptive_plan.get(**wildcards).output[0]
    bought = sorted(
        {tuple(buy) for p in json.loads(Path(plan).read_text()) for buy in p["buys"]}
    )
    return [f"{RESULTS}/finetune/{wildcards.benchmark}/{m}/{s}.json" for m, s in bought]


def adaptive_library(wildcards):
    """Adaptive's prior learns from the other benchmarks' loss tables, never the one evaluated."""
    if not config["selection"].get("adaptive_prior", False):
        return {}
    others = [b for b in BENCHMARKS if b != wildcards.benchmark]
    return {"library": [f"{RESULTS}/losses/{b}.tsv" for b in others]}


def log_path(rule_name, name="{benchmark}"):
    """The log file of one job of `rule_name`."""
    return f"{RESULTS}/logs/{rule_name}/{name}.log"


def recommend_params():
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


def selection_plan(wildcards):
    """With select.flops_budget: the plan of the benchmark (the budget it bought), else nothing."""
    return {"plan": f"{RESULTS}/plan/{wildcards.benchmark}.json"} if FLOPS_PLAN else {}


def collected_sizes(wildcards):
    """The sizes of the loss table: ALL_SIZES, or with select.flops_budget zero-shot and the sizes
    the plan of the benchmark chose (asking the checkpoint plan_selection)."""
    if not FLOPS_PLAN:
        return ALL_SIZES
    plan = checkpoints.plan_selection.get(benchmark=wildcards.benchmark).output[0]
    return [0, *json.loads(Path(plan).read_text())["sizes"]]


def plan_options():
    """The options of `python -m lensllm.training.plan`: budget, candidate sizes, the fine-tuning's epochs
    and truncation, N, and each candidate as NAME=PATH (and its GGUF file)."""
    finetune = config["finetune"]
    models = " ".join(
        shlex.quote(f"{name}={model['path']}") for name, model in MODELS.items()
    )
    gguf = " ".join(
        shlex.quote(f"{name}={model['gguf_file']}")
        for name, model in MODELS.items()
        if model["gguf_file"]
    )
    return (
        f"--flops-budget {float(FLOPS_BUDGET)!r} --sizes {' '.join(map(str, SIZES))}"
        f" --epochs {finetune['epochs']} --max-len-source {finetune['max_len_source']}"
        f" --max-len-target {finetune['max_len_target']}"
        f" --full-size {config['select']['full_size']} --model {models}"
        + (f" --gguf-file {gguf}" if gguf else "")
    )


def select_model_terms(wildcards):
    """The NTK terms and optimizer steps, when a LensLLM-NTK method forecasts."""
    needs = any(m.startswith("LensLLM-NTK") for m in config["select"]["methods"])
    return model_terms(wildcards) if needs else {}


def paper_figure_inputs(wildcards):
    """What each paper figure is drawn from."""
    losses = expand(f"{RESULTS}/losses/{{benchmark}}.tsv", benchmark=BENCHMARKS)
    return {
        "difficulty": {"losses": losses},
        "rmsd_scatter": {"table": f"{RESULTS}/paper/table3.tsv"},
        "zero_shot_lines": {"losses": losses},
        "pearcorr_vs_flops": {"selection": f"{RESULTS}/selection.tsv"},
        "ablation_hyper": {"table": f"{RESULTS}/paper/ablation_hyper.tsv"},
        "ablation_size": {"table": f"{RESULTS}/paper/ablation_size.tsv"},
    }[wildcards.figure]
