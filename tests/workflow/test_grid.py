"""The offline fine-tuning grid through the real Snakemake command line, on the quick config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest

from conftest import QUICK, quick_run, run_snakemake, snakemake_command

MODELS = ["gpt2-xs", "llama-xs", "t5-xs"]
BENCHMARKS = ["wiki", "debsum", "instruct"]
SIZES = [0, 8, 16, 32, 64, 128, 256]


@pytest.fixture
def quick_results(quick_local_results):
    return quick_local_results


def test_quick_grid_runs_end_to_end_with_real_finetunes(quick_results):
    out = quick_results / "results" / "quick"
    for benchmark in BENCHMARKS:
        table = pd.read_csv(out / "losses" / f"{benchmark}.tsv", sep="\t")
        assert list(table["config name"]) == MODELS
        assert [int(c) for c in table.columns[1:-2]] == SIZES
        for model in MODELS:
            for size in SIZES:
                job = json.loads((out / "finetune" / benchmark / model / f"{size}.json").read_text())
                assert job["model"] == model and job["benchmark"] == benchmark and job["size"] == size
                assert (job["steps"] > 0) == (size > 0)
                assert job["test_loss"] > 0 and job["n_params"] > 0
        flops = pd.read_csv(out / "finetune_flops" / f"{benchmark}.tsv", sep="\t")
        assert (flops.loc[flops["size"] > 0, "flops"] > 0).all()
    selection = pd.read_csv(out / "selection.tsv", sep="\t")
    assert set(selection["benchmark"]) == set(BENCHMARKS) and set(selection["ratio"]) == {2, 4, 8}
    assert (selection.loc[selection["method"] == "SubTuning", "cost_reduction"] > 0).all()
    for name in ["selection.md", "selection.tex", "fits.tsv", "prediction_error.tsv", "figures/fits_wiki.png"]:
        assert (out / name).stat().st_size > 0


def test_zoo_models_load_like_hub_models(quick_results):
    from transformers import AutoConfig

    for model in MODELS:
        config = AutoConfig.from_pretrained(quick_results / "results" / "quick" / "zoo" / model)
        assert config.is_encoder_decoder == (model == "t5-xs")


def test_a_killed_run_resumes_without_redoing_finished_jobs(tmp_path, sources_dir, quick_results):
    # The quick run's data and zoo stay; the grid and the analysis are redone, killed, resumed.
    subprocess.run(["cp", "-a", f"{quick_results}/.", str(tmp_path)], check=True)
    results = tmp_path / "results" / "quick"
    for path in results.iterdir():
        if path.name not in ("data", "zoo"):
            subprocess.run(["rm", "-r", str(path)], check=True)
    finetune = results / "finetune"
    command, env = snakemake_command(tmp_path, "--cores", "2", "--configfile", QUICK, "--config", f"sources_dir={sources_dir}")
    log = tmp_path / "snakemake.out"
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        def finished_jobs() -> int:
            return log.read_text().count("(Rule: finetune_model)")

        deadline = time.time() + 600
        while time.time() < deadline and process.poll() is None and finished_jobs() < 2:
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
            killed_outright = False
        except subprocess.TimeoutExpired:
            # Snakemake's SIGTERM handler can wait forever for a lock its main thread holds while
            # choosing jobs; then the run is killed outright, as by a power cut, and must unlock.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            killed_outright = True
    jobs = [d for d in finetune.glob("*/*") if len(list(d.glob("*.json"))) == len(SIZES)]
    assert len(jobs) >= 2, "fewer than two fine-tuning jobs finished before the kill"
    assert len(jobs) < len(MODELS) * len(BENCHMARKS), "the grid finished before it could be killed"
    for path in finetune.glob("*/*/*.json"):
        json.loads(path.read_text())  # nothing half-written
    finished = {p: p.stat().st_mtime_ns for d in jobs for p in d.glob("*.json")}
    if killed_outright:
        quick_run(tmp_path, sources_dir, "--unlock")
    quick_run(tmp_path, sources_dir, "--rerun-incomplete")
    for path, mtime in finished.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was redone"
    assert len(list(finetune.glob("*/*/*.json"))) == len(MODELS) * len(BENCHMARKS) * len(SIZES)
    selection = results / "selection.tsv"
    assert selection.read_bytes() == (quick_results / "results" / "quick" / "selection.tsv").read_bytes()


@pytest.mark.parametrize(
    "override, expected",
    [
        ("sizes: [32, 64, 128, 256, 512, 1024]\ntarget: 1024\n", "size 1024 is larger than the training split"),
        ("models: /nonexistent/models.tsv\n", "key 'models': no sheet at /nonexistent/models.tsv"),
        ("finetune: {lr: fast}\n", "'fast' is not of type 'number'"),
    ],
)
def test_bad_grid_config_fails_before_any_job(tmp_path, sources_dir, override, expected):
    (tmp_path / "override.yaml").write_text(override)
    result = run_snakemake(tmp_path, "-n", "--configfile", QUICK, str(tmp_path / "override.yaml"), check=False)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


def test_unknown_local_model_directory_is_named_before_any_job(tmp_path, sources_dir):
    sheet = tmp_path / "models.tsv"
    sheet.write_text("name\tpath\tfamily\nmine\t/nonexistent/model-dir\tgpt2\n")
    result = quick_run(tmp_path, sources_dir, f"models={sheet}", "-n", check=False)
    assert result.returncode != 0
    assert "model 'mine': no model directory at /nonexistent/model-dir" in result.stdout + result.stderr
