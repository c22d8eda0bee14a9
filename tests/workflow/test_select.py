"""Select mode through the real Snakemake command line: nothing above the budget is fine-tuned, bad
input stops before any job, and on the quick zoo the recommendation is checked against the quick
grid's full-data losses (the true best is known there)."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pandas as pd
import pytest

from tests.helpers import QUICK, REPO, run_snakemake

BENCHMARKS = ["wiki", "debsum", "instruct"]
METHODS = ["AtS", "RectifiedFit", "VanillaFit", "LensLLM"]


def select_config(path, *, budget=64, full_size=256, sizes=(8, 16, 32, 64), benchmarks=BENCHMARKS, extra=""):
    """A select-mode override of the quick config (same zoo and data, run_name quick)."""
    path.write_text(
        "run_name: quick\nmode: select\n"
        f"benchmarks: {json.dumps(list(benchmarks))}\nsizes: {json.dumps(list(sizes))}\n"
        f"select: {{full_size: {full_size}, budget: {budget}, methods: {json.dumps(METHODS)}, pick_method: AtS,"
        " settle_p_best: 0.8, coverage: config/published_coverage.tsv}\n" + extra
    )
    return path


def user_data(path, examples):
    """The user's own JSONL file with fields `prompt` and `answer`."""
    path.write_text("".join(json.dumps({"prompt": s, "answer": t}) + "\n" for s, t in examples))
    return path


def planned_finetune_sizes(stdout: str) -> list[int]:
    """Every size a `python -m lensllm.training.finetune` command of a dry run (-p) would fine-tune on."""
    sizes = []
    for command in re.findall(r"python -m lensllm\.training\.finetune .*", stdout):
        sizes += [int(s) for s in re.search(r"--size ((?:\d+ ?)+)", command).group(1).split()]
    return sizes


@pytest.mark.parametrize("one_job_per_size", [False, True])
def test_make_select_config_plans_no_finetune_above_the_budget(tmp_path, one_job_per_size):
    override = tmp_path / "override.yaml"
    override.write_text(f"finetune: {{one_job_per_size: {str(one_job_per_size).lower()}}}\n")
    result = run_snakemake(tmp_path, "-n", "-p", "--configfile", str(REPO / "config" / "select.yaml"), str(override))
    sizes = planned_finetune_sizes(result.stdout)
    # config/select.yaml: the default zoo, budget 128 of sizes 16 ... 128, N = 20,000.
    zoo = (REPO / "config" / "zoo.tsv").read_text().splitlines()[1:]
    assert sorted(set(sizes)) == [0, 16, 32, 64, 128]
    assert len(sizes) == len(zoo) * 5
    assert "rule recommend_model:" in result.stdout and "rule select_models:" not in result.stdout


@pytest.fixture(scope="module")
def select_run(tmp_path_factory, quick_local_results, sources_dir):
    """Select mode on a copy of the quick run (its data and zoo reused), budget 64, N = 256 (the
    quick grid's target), on the three quick benchmarks and on the user's own file."""
    workdir = tmp_path_factory.mktemp("select")
    subprocess.run(["cp", "-a", f"{quick_local_results}/.", str(workdir)], check=True)
    debsum = [json.loads(line) for line in (workdir / "results" / "quick" / "data" / "debsum.jsonl").read_text().splitlines()[1:]]
    mine = user_data(workdir / "mine.jsonl", [(r["source"], r["target"]) for r in debsum if r["split"] == "train"][:120])
    extra = f"user_data:\n  mine: {{train_file: {mine}, source_field: prompt, target_field: answer, test_size: 32}}\n"
    config = select_config(workdir / "select.yaml", benchmarks=[*BENCHMARKS, "mine"], extra=extra)
    result = run_snakemake(workdir, "--cores", "2", "-p", "--configfile", QUICK, str(config), "--config", f"sources_dir={sources_dir}")
    return workdir, result.stdout + result.stderr


def test_select_mode_fine_tunes_nothing_above_the_budget(select_run):
    workdir, output = select_run
    assert max(planned_finetune_sizes(output)) == 64
    assert sorted(int(p.stem) for p in (workdir / "results" / "quick" / "finetune" / "mine" / "gpt2-xs").glob("*.json")) == [0, 8, 16, 32, 64]
    table = pd.read_csv(workdir / "results" / "quick" / "losses" / "mine.tsv", sep="\t")
    assert [int(c) for c in table.columns[1:-2]] == [0, 8, 16, 32, 64]


def test_select_mode_recommends_against_the_quick_grid_truth(select_run, quick_local_results):
    workdir, _ = select_run
    out = workdir / "results" / "quick"
    recommendation = pd.read_csv(out / "recommendation.tsv", sep="\t")
    markdown = (out / "recommendation.md").read_text()
    assert set(recommendation["benchmark"]) == {*BENCHMARKS, "mine"} and set(recommendation["method"]) == set(METHODS)
    for (benchmark, method), rows in recommendation.groupby(["benchmark", "method"]):
        kept = rows.dropna(subset=["p_best"])
        assert kept["p_best"].sum() == pytest.approx(1.0), (benchmark, method)
        assert (kept["low"] < kept["predicted"]).all() and (kept["predicted"] < kept["high"]).all()
        # At N = 4 x budget a fine-tune costs 4 x the one at the budget: more than all five so far.
        assert (rows["flops_at_full"] > rows["flops_spent"]).all()
    for benchmark in [*BENCHMARKS, "mine"]:
        assert (out / "figures" / f"recommendation_{benchmark}.png").stat().st_size > 0
        assert f"## {benchmark}: fine-tune **" in markdown
    assert "runner-up" in markdown and "nominal 80%, covered 78% on flan, 95% on gigaword" in markdown

    lines, wrong, covered = [], [], {m: [] for m in METHODS}
    for benchmark in BENCHMARKS:
        truth = pd.read_csv(quick_local_results / "results" / "quick" / "losses" / f"{benchmark}.tsv", sep="\t")
        true = dict(zip(truth["config name"], truth["256"]))
        ats = recommendation[(recommendation["benchmark"] == benchmark) & (recommendation["method"] == "AtS")].set_index("rank")
        pick, best = ats.loc[1, "model"], min(true, key=true.get)
        worst = max(true.values())
        for method in METHODS:
            rows = recommendation[(recommendation["benchmark"] == benchmark) & (recommendation["method"] == method)].dropna(subset=["p_best"])
            covered[method] += [low <= true[m] <= high for m, low, high in zip(rows["model"], rows["low"], rows["high"])]
        lines.append(f"{benchmark}: pick {pick} (P(best) {ats.loc[1, 'p_best']:.2f}; true best {best}), "
                     f"RelAcc {(worst - true[pick]) / (worst - min(true.values())):.2f}")
        if pick != best:
            wrong.append((benchmark, ats.loc[1, "p_best"], ats.loc[2, "model"] == best))
    coverage = {m: float(np.mean(c)) for m, c in covered.items()}
    print("\n".join(lines), "\ncoverage of the 80% intervals at N = 256 on the quick grid:", coverage)
    # The coverage is reported (here and in docs/select-mode.md), not held to a threshold: nine forecasts
    # per method share each benchmark's bend beyond the budget, so one model flipping moves it by
    # 11 points, and the last digits of the fine-tunes (which differ between CPUs) flip models.
    # The quick zoo is built so that the leading curves cross late (on debsum after the budget, 64):
    # a pick may be wrong there, but then it must not claim to be settled (P(best) < 0.8), and the
    # true best must be the runner-up, the model the recommendation says to settle it with.
    assert len(wrong) <= 1, lines
    assert all(p_best < 0.8 and runner_up_is_best for _, p_best, runner_up_is_best in wrong), lines


def _select_error(tmp_path, config) -> str:
    result = run_snakemake(tmp_path, "-n", "--configfile", QUICK, str(config), check=False)
    assert result.returncode != 0, "the run was not refused"
    assert "rule finetune_model:" not in result.stdout, "the run was refused only after planning jobs"
    return result.stdout + result.stderr


def _rows(n, start=0):
    return [(f"describe package {i}: a tool that does thing {i}", f"tool {i}") for i in range(start, start + n)]


@pytest.mark.parametrize(
    "case, expected",
    [
        ("full_size_below_budget", "key 'select.full_size' (32) must be larger than the budget select.budget = 64"),
        ("budget_not_a_size", "key 'select.budget' (48) must be one of 'sizes' [8, 16, 32, 64]"),
        ("budget_above_data", "key 'select.budget' needs 64 training examples, {train} has only 32"),
        ("missing_file", "key 'user_data.mine.train_file': no file at {missing}"),
        ("unparsable_file", "{train}"),
        ("missing_field", "no field 'answer' (key 'target_field')"),
        ("test_split_overlaps", "overlap the training subsets"),
        ("one_candidate", "only one candidate model"),
    ],
)
def test_select_mode_refuses_bad_input_before_any_job(tmp_path, case, expected):
    train = user_data(tmp_path / "train.jsonl", _rows(200))
    missing = tmp_path / "nothing.jsonl"
    spec = {"train_file": str(train), "source_field": "prompt", "target_field": "answer", "test_size": 16}
    options = {"budget": 64, "full_size": 256, "sizes": (8, 16, 32, 64)}
    extra = ""
    if case == "full_size_below_budget":
        options["full_size"] = 32
    elif case == "budget_not_a_size":
        options["budget"] = 48
    elif case == "budget_above_data":
        user_data(train, _rows(48))
    elif case == "missing_file":
        spec["train_file"] = str(missing)
    elif case == "unparsable_file":
        train.write_text(train.read_text() + "{not json\n")
    elif case == "missing_field":
        user_data(train, _rows(200))
        train.write_text(train.read_text().replace('"answer"', '"reply"'))
    elif case == "test_split_overlaps":
        spec["test_file"] = str(train)
    elif case == "one_candidate":
        zoo = (REPO / "config" / "zoo-quick.tsv").read_text().splitlines()
        (tmp_path / "zoo.tsv").write_text("\n".join(zoo[:2]) + "\n")
        extra = f"zoo: {tmp_path / 'zoo.tsv'}\nmodels: null\n"
    extra += f"user_data:\n  mine: {json.dumps(spec)}\n"
    config = select_config(tmp_path / "select.yaml", benchmarks=["mine"], extra=extra, **options)
    output = _select_error(tmp_path, config)
    assert expected.format(train=train, missing=missing) in output, output[-3000:]


def test_select_mode_needs_the_grid(tmp_path):
    config = tmp_path / "select.yaml"
    config.write_text("mode: select\nselect: {full_size: 256, budget: 64, methods: [AtS], pick_method: AtS, settle_p_best: 0.8, coverage: x}\n")
    result = run_snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "paper.yaml"), str(config), check=False)
    assert result.returncode != 0
    assert "key 'mode': select fine-tunes the candidates, so it needs source: grid" in result.stdout + result.stderr
