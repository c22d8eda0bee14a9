"""The checks of a run's configuration that the schema cannot express, and the candidate models.

The workflow (rules/common.smk) calls these at start, before any job runs, with Snakemake's `config`
dict (already validated against workflow/schemas/config.schema.yaml, defaults filled in); each
failure is one `ConfigError` whose message names the key, the sheet, the row or the model at fault,
and the workflow turns it into Snakemake's error. Plain functions of the config dict and paths,
without Snakemake: tests call them directly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from jsonschema import Draft202012Validator, ValidationError

from lensllm.curves.budgets import budget_of
from lensllm.data.builders import OFFLINE_BENCHMARKS
from lensllm.selection.registry import MODEL_TERM_SELECTORS

# The benchmarks built from the offline sources (lensllm.data.builders; the zoo is pre-trained on
# their corpora too). Defined here for now: it belongs with the offline builders in lensllm.data.


class ConfigError(ValueError):
    """A configuration the schema cannot judge; str() is "configuration: <message>"."""

    def __init__(self, message: str):
        super().__init__(f"configuration: {message}")
        self.message = message


def flops_budget(config: Mapping[str, Any]) -> Any:
    """Select mode's select.flops_budget when it chooses the budget (select.budget null: the
    checkpoint plan_selection takes the largest size it affords on each benchmark), else None. With
    select.budget and rounds (select.max_rounds > 0) the FLOPs budget caps the rounds instead
    (`rounds_flops_budget`)."""
    if config.get("mode", "evaluate") != "select":
        return None
    choice = config.get("select", {})
    return choice.get("flops_budget") if choice.get("budget") is None else None


def rounds_on(config: Mapping[str, Any]) -> bool:
    """Whether select mode runs rounds after round 0 (select.max_rounds > 0, rules/race.smk)."""
    return config.get("mode", "evaluate") == "select" and config.get("select", {}).get("max_rounds", 0) > 0


def rounds_flops_budget(config: Mapping[str, Any]) -> float | None:
    """The FLOPs budget of select mode's rounds: select.flops_budget as a number, a TOTAL over round 0,
    every round and every benchmark; None when not given (the rounds are then bounded by
    select.max_rounds, the data and select.reach when set)."""
    given = config.get("select", {}).get("flops_budget")
    return None if given is None else float(given)


def race_ladder(config: Mapping[str, Any]) -> list[int]:
    """The sizes the rounds may buy: doublings of select.budget (2b, 4b, ...) below select.full_size,
    within the training pool (data.max_train) and, when set, up to select.reach x b. A benchmark whose file
    holds fewer training examples buys only the sizes it holds (the round-0 job reads its count)."""
    choice = config["select"]
    budget, reach = choice["budget"], choice.get("reach")
    ladder, size = [], 2 * budget
    while (reach is None or size <= reach * budget) and size < choice["full_size"] and size <= config["data"]["max_train"]:
        ladder.append(size)
        size *= 2
    return ladder


def _positive_flops(value: Any) -> float:
    """select.flops_budget as a positive number, else a ConfigError naming the key."""
    try:
        budget = float(value)
    except ValueError:
        budget = -1.0
    if not budget > 0:
        raise ConfigError(f"key 'select.flops_budget' ({value!r}) must be a positive number of FLOPs")
    return budget


def check_rounds(config: Mapping[str, Any]) -> None:
    """Select mode's rounds (select.max_rounds > 0): they extend round 0 (select.budget) with AtS's
    forecasts, within select.flops_budget when given, and need a size to grow into."""
    choice = config["select"]
    if choice.get("budget") is None:
        raise ConfigError(
            f"key 'select.max_rounds' ({choice['max_rounds']}) needs 'select.budget' (round 0's largest "
            "size): with select.budget null, select.flops_budget chooses the budget (plan_selection) and "
            "there are no rounds; set select.max_rounds: 0, or give select.budget (select.flops_budget "
            "then caps round 0 and every round together)"
        )
    if choice["pick_method"] != "AtS":
        raise ConfigError(
            f"key 'select.pick_method' ({choice['pick_method']}): the rounds (select.max_rounds > 0) "
            "forecast with AtS's line on the sizes each candidate owns; set select.pick_method: AtS, or "
            "select.max_rounds: 0"
        )
    if choice.get("flops_budget") is not None:
        _positive_flops(choice["flops_budget"])
    if not race_ladder(config):
        limits = [f"above data.max_train ({config['data']['max_train']})",
                  f"not below select.full_size ({choice['full_size']})"]
        if choice.get("reach") is not None:
            limits.append(f"above select.reach x budget ({choice['reach'] * choice['budget']})")
        raise ConfigError(
            f"key 'select.max_rounds' ({choice['max_rounds']}): the rounds fine-tune the contenders at "
            f"2 x select.budget = {2 * choice['budget']} and beyond, but that is {', '.join(limits[:-1])} or "
            f"{limits[-1]}; set select.max_rounds: 0 or make room"
        )


def offline_benchmarks(config: Mapping[str, Any]) -> list[str]:
    """The run's benchmarks built from the offline sources: neither a hub nor a user_data entry."""
    hub, user = config.get("hub_benchmarks", {}), config.get("user_data", {})
    return [b for b in config["benchmarks"] if b not in hub and b not in user]


def measures_bound(config: Mapping[str, Any]) -> bool:
    """Whether the grid's fine-tunes measure the PAC-Bayes bound (finetune.bound_batches > 0)."""
    return config["source"] != "published" and config["finetune"].get("bound_batches", 4) > 0


def check_evaluation_grid(config: Mapping[str, Any], sizes: Sequence[int] | None) -> None:
    """Evaluation: the target is the largest size and every budget target/ratio is a size."""
    target, ratios = config["target"], config["ratios"]
    if any(target % r for r in ratios):
        raise ConfigError(f"key 'ratios': {[r for r in ratios if target % r]} do not divide the target size {target}")
    if sizes is None:
        return
    if target != sizes[-1]:
        raise ConfigError(f"key 'target' ({target}) must be the largest of 'sizes' {sizes}")
    bad_budgets = [r for r in ratios if budget_of(target, r) not in sizes]
    if bad_budgets:
        raise ConfigError(f"key 'ratios': budgets target/{bad_budgets} are not among 'sizes' {sizes}")


def selection_sizes(config: Mapping[str, Any]) -> list[int]:
    """Select mode: the sizes up to the budget (select.budget, a size of 'sizes'); with
    select.flops_budget instead, every size of 'sizes' (the plan_selection job picks the budget).
    """
    choice, sizes = config["select"], sorted(config["sizes"])
    given = [k for k in ("budget", "flops_budget") if choice.get(k) is not None]
    rounds = choice.get("max_rounds", 0) > 0
    if rounds:
        check_rounds(config)
    elif len(given) != 1:
        raise ConfigError(
            "give exactly one of 'select.budget' (the largest training subset per candidate) and "
            "'select.flops_budget' (the fine-tuning FLOPs of the whole selection per benchmark), the "
            f"other null or absent; {'both are' if given else 'neither is'} given"
            + (" (a file laid over config/select.yaml inherits its budget: set budget: null)" if given else "")
            + (" (both together only with rounds: select.max_rounds > 0)" if len(given) == 2 else "")
        )
    flops = flops_budget(config)
    if flops is not None:
        _positive_flops(flops)
        if choice["full_size"] <= sizes[-1]:
            raise ConfigError(
                f"key 'select.full_size' ({choice['full_size']}) must be larger than every size of "
                f"'sizes' {sizes}: with select.flops_budget any of them may become the budget"
            )
        return sizes
    if choice["budget"] not in sizes:
        raise ConfigError(f"key 'select.budget' ({choice['budget']}) must be one of 'sizes' {sizes}")
    if choice["full_size"] <= choice["budget"]:
        raise ConfigError(
            f"key 'select.full_size' ({choice['full_size']}) must be larger than the budget "
            f"select.budget = {choice['budget']}: nothing would be left to predict"
        )
    kept = [s for s in sizes if s <= choice["budget"]]
    if len(kept) < 2:
        raise ConfigError(
            f"key 'select.budget' ({choice['budget']}) leaves fewer than two training sizes of "
            f"'sizes' {sizes}; the laws need a curve"
        )
    return kept


def check_benchmark_names(config: Mapping[str, Any]) -> None:
    """Every benchmark is an offline one, a hub_benchmarks entry or a user_data entry."""
    known = [*OFFLINE_BENCHMARKS, *config.get("hub_benchmarks", {}), *config.get("user_data", {})]
    unknown = [b for b in config["benchmarks"] if b not in known]
    if unknown:
        raise ConfigError(
            f"key 'benchmarks': unknown benchmark(s) {unknown}; known: {known} (the offline "
            "ones, and the names given under 'hub_benchmarks' and 'user_data')"
        )


def check_published(config: Mapping[str, Any]) -> None:
    """Published curves (source: published): what they cannot do, and the cost of each benchmark."""
    check_evaluation_grid(config, None)
    if config.get("mode", "evaluate") == "select":
        raise ConfigError("key 'mode': select fine-tunes the candidates, so it needs source: grid")
    needs_models = [m for m in config["methods"] if m in MODEL_TERM_SELECTORS]
    if needs_models:
        raise ConfigError(
            f"key 'methods': {needs_models} need the models' weights (NTK, weight spectra), "
            "which published curves do not have; use them with source: grid"
        )
    missing_costs = [b for b in config["benchmarks"] if b not in config["cost"]]
    if missing_costs:
        raise ConfigError(
            f"key 'cost' has no entry for benchmark(s) {missing_costs}: "
            "give tokens_per_example, epochs and runs_per_size for each"
        )


def grid_sizes(config: Mapping[str, Any]) -> list[int]:
    """Our fine-tuning grid (source: grid): the training sizes of the run (without zero-shot), after
    the checks of the benchmarks, the sizes and the settings the grid cannot run."""
    check_benchmark_names(config)
    if config.get("mode", "evaluate") == "select":
        sizes = selection_sizes(config)
    else:
        sizes = sorted(config["sizes"])
        check_evaluation_grid(config, sizes)
    if sizes[-1] > config["data"]["max_train"]:
        raise ConfigError(
            f"key 'sizes': size {sizes[-1]} is larger than the training split "
            f"(data.max_train = {config['data']['max_train']})"
        )
    if "Adaptive" in config["methods"] and config["selection"].get("adaptive_prior"):
        raise ConfigError(
            "key 'selection.adaptive_prior': the prior runs on published curves only; on the grid "
            "Adaptive's rounds are jobs outside the analysis group, which cannot read its tables"
        )
    return sizes


def check_job_python(command: str = "python") -> None:
    """Shell rules run `python -m lensllm...`: the `command` on PATH must import lensllm (the
    workflow skips this when conda environments are deployed for the jobs)."""
    python = shutil.which(command)
    found = python and subprocess.run([python, "-c", "import lensllm"], capture_output=True)
    if not found or found.returncode != 0:
        raise ConfigError(
            f"the jobs run `python -m lensllm...`, but the python on PATH ({python or 'none'}) "
            "cannot import lensllm: activate the environment first (. .venv/bin/activate) "
            "or use --sdm conda"
        )


def user_data_spec(config: Mapping[str, Any], name: str, sizes: Sequence[int]) -> dict[str, Any]:
    """The keyword arguments of lensllm.data.user.load_user_benchmark for user_data entry `name`
    (`sizes`: the run's training sizes, the largest of which the file must hold): every key of the
    entry as given (skip_bad_rows included), test_size defaulting to data.test_size."""
    spec = {"test_size": config["data"]["test_size"], **config["user_data"][name]}
    select = config.get("mode", "evaluate") == "select"
    return {
        **spec,
        "name": name,
        "max_train": config["data"]["max_train"],
        "min_train": sizes[-1],
        "min_train_key": "select.budget" if select and flops_budget(config) is None else "sizes",
        "seed": config["data"]["seed"],
    }


def check_user_data(config: Mapping[str, Any], results: str, sizes: Sequence[int], *, conda: bool = False) -> None:
    """Load each user data file as its build job will (`python -m lensllm.data.user check-user`),
    before any job runs, and stop on the first bad one; skipped once its benchmark file under
    `results` is built and newer than the data files, and left to the build job when the jobs run
    in conda environments (`conda`), where only the files' existence is checked."""
    user_data = config.get("user_data", {})
    for name in config["benchmarks"]:
        if name not in user_data:
            continue
        files = [user_data[name]["train_file"], user_data[name].get("test_file")]
        for key, path in zip(("train_file", "test_file"), files):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"key 'user_data.{name}.{key}': no file at {path}")
        built = Path(f"{results}/data/{name}.jsonl")
        if conda or built.is_file() and all(built.stat().st_mtime > Path(p).stat().st_mtime for p in files if p):
            continue
        result = subprocess.run(
            ["python", "-m", "lensllm.data.user", "check-user", json.dumps(user_data_spec(config, name, sizes))],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ConfigError(f"key 'user_data.{name}': {_last_message(result.stderr)}")


def _last_message(stderr: str) -> str:
    """The last message of a command's stderr: its last line that is not indented, with the
    indented lines after it (the unusable rows a user data error lists, one per line)."""
    lines = stderr.rstrip().splitlines() or [""]
    start = max((i for i, line in enumerate(lines) if not line[:1].isspace()), default=0)
    return "\n".join(lines[start:])


def repository_path(path: str | Path, basedir: str | Path) -> Path:
    """A path of the configuration: relative ones are relative to the repository (`basedir`, the
    Snakefile's directory)."""
    return Path(path) if Path(path).is_absolute() else Path(basedir) / path


def validate_rows(rows: Sequence[Mapping[str, Any]], schema_path: str | Path) -> list[dict[str, Any]]:
    """Each row (a dict; None and NaN values left out) validated against the JSON schema of one row,
    with the schema's defaults filled in, as snakemake.utils.validate validates a data frame; the
    first bad row raises ValueError("Error validating row <i> of data frame.\\nValidationError: ...").
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = Draft202012Validator(schema)
    defaults = {k: v["default"] for k, v in schema.get("properties", {}).items() if "default" in v}
    checked = []
    for i, row in enumerate(rows):
        record = {k: v for k, v in row.items() if pd.notnull(v)}
        try:
            validator.validate(record)
        except ValidationError as err:
            raise ValueError(f"Error validating row {i} of data frame.\nValidationError: {err}") from None
        checked.append({**defaults, **row})
    return checked


def read_sheet(config: Mapping[str, Any], key: str, schema_path: str | Path, basedir: str | Path) -> list[dict[str, Any]]:
    """The rows of the sheet named by config[key] (a TSV; relative to `basedir`), validated against
    the schema at `schema_path`; columns whose every value is a number are numbers."""
    if config[key] is None:
        return []
    path = repository_path(config[key], basedir)
    if not path.is_file():
        raise ConfigError(f"key '{key}': no sheet at {path}")
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for column in sheet.columns:
        numeric = pd.to_numeric(sheet[column], errors="coerce")
        if len(sheet) and numeric.notna().all():
            sheet[column] = numeric
    try:
        return validate_rows(sheet.to_dict("records"), schema_path)
    except ValueError as err:
        raise ConfigError(f"key '{key}': sheet {path}: {err} (rows counted from 0 below the header)") from None


def candidate_models(config: Mapping[str, Any], results: str, basedir: str | Path) -> dict[str, dict[str, Any]]:
    """name -> {path, family, zoo, pad_token, gguf_file, revision} for the zoo and the models sheet
    (sheets and schemas found from `basedir`, the repository; zoo models live under `results`)."""
    schemas = Path(basedir) / "workflow" / "schemas"
    models = {}
    for row in read_sheet(config, "zoo", schemas / "zoo.schema.yaml", basedir):
        models[row["name"]] = {
            "path": f"{results}/zoo/{row['name']}",
            "family": row["architecture"],
            "zoo": row,
            "pad_token": "",
            "gguf_file": "",
            "revision": "",
        }
    for row in read_sheet(config, "models", schemas / "models.schema.yaml", basedir):
        if row["name"] in models:
            raise ConfigError(
                f"model '{row['name']}' is both in the zoo sheet ({config['zoo']}) and in the models sheet ({config['models']})"
            )
        path = row["path"]
        local = Path(path).expanduser()
        if (local.is_absolute() or path.startswith(".")) and not local.exists():
            raise ConfigError(f"model '{row['name']}': no model directory at {path}")
        models[row["name"]] = {
            "path": path,
            "family": row["family"],
            "zoo": None,
            "pad_token": row.get("pad_token", ""),
            "gguf_file": row.get("gguf_file", ""),
            "revision": str(row.get("revision", "")),
        }
    if not models:
        raise ConfigError("no candidate models: give a 'zoo' sheet, a 'models' sheet, or both")
    if len(models) < 2:
        raise ConfigError(
            f"keys 'zoo' and 'models': only one candidate model ({list(models)[0]}); choosing needs at least two"
        )
    return models


def is_hub_model(model: Mapping[str, Any]) -> bool:
    """Whether a candidate (a `candidate_models` value) comes from the hub: not the zoo, not an
    installed package (pkg://), not a directory on this machine."""
    path = model["path"]
    local = Path(path).expanduser()
    return not (
        model["zoo"] or path.startswith("pkg://") or local.is_absolute() or path.startswith(".") or local.exists()
    )


def fetched_sources(config: Mapping[str, Any], models: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The raw sources to fetch: those of the offline benchmarks, and every corpus when there is a zoo."""
    offline = offline_benchmarks(config)
    has_zoo = any(m["zoo"] for m in models.values())
    return [*offline, *[c for c in OFFLINE_BENCHMARKS if c not in offline and has_zoo]]
