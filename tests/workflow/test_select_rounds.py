"""Select mode's rounds through the real Snakemake command line, on a small version of `make select`:
the quick zoo (config/quick.yaml) on debsum, round 0 up to 32 examples, then rounds that extend only
the contenders (64, 128, 256) within a FLOPs budget. One run, killed hard (SIGKILL to the launcher,
Snakemake and its jobs) once a round's fine-tune has started and resumed by the same command, is
checked by every test: the FLOPs budget holds, a dropped contender is never fine-tuned again, the
fine-tunes on disk are exactly round 0 and what the rounds bought, and a rerun has nothing to do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest

from tests.helpers import QUICK, snakemake_command

BUDGET, LADDER = 32, (64, 128, 256)
MODELS = ["gpt2-xs", "llama-xs", "t5-xs"]
# Round 0 measures about 1.0e10 FLOPs on the quick zoo, a contender's fine-tune at 64 about 4.8e9
# (t5-xs 2.2e9), doubling with the size: the budget buys about two rounds and part of a third.
FLOPS_BUDGET = 6e10
ROUNDS = f"""run_name: rounds
mode: select
benchmarks: [debsum]
sizes: [8, 16, 32]
select:
  full_size: 4096
  budget: {BUDGET}
  flops_budget: {FLOPS_BUDGET:g}
  max_rounds: 3
  contenders: 2
  margin: 0.5
  reach: 8
  shared: 0.5
  methods: [AtS, VanillaFit]
  pick_method: AtS
  settle_p_best: 0.99
  coverage: config/published_coverage.tsv
finetune: {{hessian_probes: 0, bound_batches: 0}}
"""


def launch(workdir, sources_dir):
    """The command `make select` runs (Snakemake through the launcher: a stale lock removed,
    --rerun-incomplete) with the quick zoo and the rounds above, in `workdir`; and its environment."""
    config = workdir / "rounds.yaml"
    config.write_text(ROUNDS)
    command, env = snakemake_command(workdir, "--cores", "2", "--rerun-incomplete", "--configfile", QUICK, str(config),
                                     "--config", f"sources_dir={sources_dir}")
    command[command.index("snakemake")] = "lensllm.pipeline.launch"
    return command, env


def finetunes(results):
    """Every fine-tune on disk: (model, size) -> its job record."""
    found = {}
    for path in (results / "finetune" / "debsum").glob("*/*.json"):
        record = json.loads(path.read_text())  # nothing half-written
        found[(record["model"], int(record["size"]))] = record
    return found


@pytest.fixture(scope="module")
def rounds_run(tmp_path_factory, sources_dir):
    """The run, killed with SIGKILL once a round's fine-tune has started, then the same command
    again to the end; returns its results directory, what was finished at the kill (path -> mtime)
    and the resumed run's output."""
    workdir = tmp_path_factory.mktemp("rounds")
    results = workdir / "results" / "rounds"
    command, env = launch(workdir, sources_dir)
    with open(workdir / "killed.out", "w") as out:
        process = subprocess.Popen(command, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 600
        started = results / "logs" / "finetune_contender" / "debsum"
        while time.time() < deadline and process.poll() is None and not list(started.glob("*/*.log")):
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed = (workdir / "killed.out").read_text()
    assert list(started.glob("*/*.log")), f"no round's fine-tune started before the kill:\n{killed[-3000:]}"
    assert list((workdir / ".snakemake" / "locks").glob("*.lock")), "the kill left no lock: nothing was tested"
    finished = {p: p.stat().st_mtime_ns for p in [*(results / "finetune").glob("*/*/*.json"),
                                                  *(results / "race").glob("*/*.json")]}
    finetunes(results)
    resumed = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-5000:]
    return results, finished, resumed.stdout + resumed.stderr, command, env


def records(results):
    """Every round's record, in order."""
    paths = sorted((results / "race" / "debsum").glob("round*.json"), key=lambda p: int(p.stem[5:]))
    return [json.loads(p.read_text()) for p in paths]


def test_a_run_killed_mid_round_resumes_redoing_only_unfinished_jobs(rounds_run):
    results, finished, output, _, _ = rounds_run
    assert "removed the lock a killed run left" in output
    assert any("/race/" in str(p) for p in finished), "the kill came before round 0's record"
    for path, mtime in finished.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was redone"
    last = records(results)[-1]
    assert last["rounds"][-1]["stopped"] and (results / "recommendation.md").is_file()


def test_the_fine_tunes_are_round_0_and_what_the_rounds_bought_within_the_flops_budget(rounds_run):
    results = rounds_run[0]
    rounds = records(results)[-1]["rounds"]
    assert [r["index"] for r in rounds] == list(range(len(rounds))) and len(rounds) >= 2
    round0 = {(m, s) for m in MODELS for s in (0, 8, 16, 32)}
    bought = {(m, s) for r in rounds[1:] for m, s in r["bought"]}
    on_disk = finetunes(results)
    assert set(on_disk) == round0 | bought  # nothing else above the budget was fine-tuned
    assert all(BUDGET < s <= max(LADDER) for _, s in bought)
    spent = sum(r["flops_measured"] for (m, s), r in on_disk.items() if s > 0)
    assert spent <= FLOPS_BUDGET
    assert spent == pytest.approx(rounds[-1]["spent"])
    for before, after in zip(rounds, rounds[1:]):  # each round bought what the last one chose
        assert sorted(map(tuple, after["bought"])) == sorted(map(tuple, before["next"]))


def test_a_contender_dropped_in_a_round_is_never_fine_tuned_again(rounds_run):
    rounds = records(rounds_run[0])[-1]["rounds"]
    for k, r in enumerate(rounds[1:], start=1):
        for model, _ in r["bought"]:
            assert all(model in earlier["contenders"] for earlier in rounds[:k]), (model, k)
        assert set(r["contenders"]) <= set(rounds[k - 1]["contenders"])


def test_the_recommendation_says_each_round_and_why_it_stopped(rounds_run):
    results = rounds_run[0]
    last = records(results)[-1]
    rounds = last["rounds"]
    pick = rounds[-1]["standings"][0]
    table = pd.read_csv(results / "recommendation.tsv", sep="\t")
    race = table[table["method"] == "Race"]
    assert race.loc[race["rank"] == 1, "model"].item() == pick["model"]
    assert list(race["expected"]) == sorted(race["expected"]) and (race["round"] == rounds[-1]["index"]).all()
    assert set(table["method"]) == {"Race", "AtS", "VanillaFit"}
    markdown = (results / "recommendation.md").read_text()
    assert f"## debsum: fine-tune **{pick['model']}**" in markdown
    assert f"**Why the rounds stopped:** {rounds[-1]['stopped']}." in markdown
    assert "a total over round 0, every round and every benchmark" in markdown
    assert "minimises the expected loss" in markdown
    for r in rounds:
        assert f"| {r['index']} | " in markdown
    assert (results / "figures" / "recommendation_debsum.png").stat().st_size > 0
    print(markdown[:markdown.index("Intervals:")])


def test_a_rerun_has_nothing_to_do_and_leaves_the_recommendation_byte_identical(rounds_run):
    results, _, _, command, env = rounds_run
    outputs = [results / "recommendation.md", results / "recommendation.tsv", *sorted((results / "race").glob("*/*.json"))]
    before = {p: p.read_bytes() for p in outputs}
    again = subprocess.run(command, env=env, cwd=results.parents[1], capture_output=True, text=True)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stderr[-3000:]
    assert {p: p.read_bytes() for p in outputs} == before
