"""The papers' grid (config/hub.yaml: 30 hub models x 3 benchmarks x 15 sizes) as a Snakemake DAG:
built offline (no hub access, no dataset loaded) in under 20 s, the expected jobs per rule, the
cluster resources of the fine-tunes, and the packing of the small ones by the SLURM profile."""

from __future__ import annotations

import re
import time

import pandas as pd
import pytest
import yaml

from tests.helpers import REPO, run_snakemake

HUB = REPO / "config" / "hub.yaml"
PROFILE = REPO / "config" / "profiles" / "slurm"
# Rules of the offline zoo and its sources: none in a grid of hub models on hub benchmarks.
ZOO_RULES = ["fetch_sources", "sample_pretraining_texts", "train_tokenizer", "pretrain_model"]


def job_counts(output: str) -> dict[str, int]:
    """The `Job stats` table of a dry-run: rule -> number of jobs, and `total`."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


@pytest.fixture(scope="module")
def hub():
    """What the hub config asks for: models (from its sheet), benchmarks, sizes, budgets."""
    config = yaml.safe_load(HUB.read_text())
    models = pd.read_csv(REPO / config["models"], sep="\t")
    return {
        "models": list(models["name"]),
        "benchmarks": config["benchmarks"],
        "sizes": [0, *config["sizes"]],
        "smallest_budget": config["target"] // max(config["ratios"]),
    }


@pytest.fixture(scope="module")
def hub_dry_run(tmp_path_factory):
    """`snakemake -n --configfile config/hub.yaml` (job table only) and its wall time."""
    workdir = tmp_path_factory.mktemp("hub")
    start = time.perf_counter()
    result = run_snakemake(workdir, "-n", "--configfile", str(HUB), "--quiet", "rules")
    return result.stdout + result.stderr, time.perf_counter() - start


def test_hub_dag_has_the_expected_jobs_per_rule(hub, hub_dry_run):
    output, _ = hub_dry_run
    counts = job_counts(output)
    n_models, n_benchmarks, n_sizes = len(hub["models"]), len(hub["benchmarks"]), len(hub["sizes"])
    assert (n_models, n_benchmarks, n_sizes) == (30, 3, 15)
    expected = {
        "build_benchmark": n_benchmarks,
        "finetune_model": n_models * n_benchmarks * n_sizes,  # one job per size (one_job_per_size)
        "collect_losses": n_benchmarks,
        "fit_laws": n_benchmarks,
        "select_models": n_benchmarks,
        "score_selection": n_benchmarks,
        "plot_fit_curves": n_benchmarks,
        "collect_fits": 1,
        "make_selection_table": 1,
        "plot_selection": 1,
        "all": 1,
        # What the weights say: NTK per model x benchmark, spectra per model.
        "compute_ntk": n_models * n_benchmarks,
        "measure_weight_spectra": n_models,
        "tabulate_model_terms": 1,
        "plot_hessian": n_benchmarks,
        # Every hub model fetched once, before its jobs (a local rule).
        "download_models": n_models,
    }
    for rule, n in expected.items():
        assert counts.get(rule) == n, f"{rule}: {counts.get(rule)} jobs, expected {n}"
    for rule in ZOO_RULES:
        assert rule not in counts
    assert counts["total"] == sum(n for rule, n in counts.items() if rule != "total")
    assert counts["finetune_model"] == 1350


def test_hub_dag_builds_in_under_20_seconds(hub_dry_run):
    _, seconds = hub_dry_run
    assert seconds < 20, f"snakemake -n on config/hub.yaml took {seconds:.1f} s"


@pytest.fixture(scope="module")
def hub_slurm_dry_run(tmp_path_factory):
    """The same DAG through the SLURM profile, every job printed with its resources and group."""
    workdir = tmp_path_factory.mktemp("hub-slurm")
    result = run_snakemake(workdir, "-n", "--configfile", str(HUB), "--workflow-profile", str(PROFILE))
    return result.stdout + result.stderr


def finetune_resources(output: str) -> dict[tuple[str, str, int], dict[str, int]]:
    """(benchmark, model, size) -> the numeric resources of its fine-tuning job."""
    jobs = {}
    for block in re.findall(r"rule finetune_model:\n(.*?)\n\S", output, flags=re.S):
        wildcards = dict(re.findall(r"(\w+)=([^,\s]+)", re.search(r"wildcards: (.*)", block).group(1)))
        resources = dict(re.findall(r"(\w+)=(\d+)(?:,|$)", re.search(r"resources: (.*)", block).group(1)))
        key = (wildcards["benchmark"], wildcards["model"], int(wildcards["size"]))
        jobs[key] = {name: int(value) for name, value in resources.items()}
    return jobs


def test_finetune_resources_grow_with_model_and_data_size(hub, hub_slurm_dry_run):
    jobs = finetune_resources(hub_slurm_dry_run)
    assert len(jobs) == 1350
    small, large = jobs[("flan", "gpt2", 200)], jobs[("flan", "gpt2", 1638400)]
    assert large["mem_mb"] > small["mem_mb"] and large["runtime"] > small["runtime"]
    bigger = jobs[("flan", "opt-6.7b", 200)]
    assert bigger["mem_mb"] > 10 * small["mem_mb"] and bigger["runtime"] >= small["runtime"]
    # Every job asks for host memory, a run time, one GPU (config/hub.yaml: device cuda) and GPU
    # memory, more for the larger model; the 7B models need LoRA or a GPU larger than 80 GB.
    assert all(job["mem_mb"] >= 1500 and job["runtime"] >= 10 and job["gpu"] == 1 for job in jobs.values())
    assert bigger["gpu_mem_mb"] > small["gpu_mem_mb"] > 500


def test_slurm_profile_packs_the_small_finetunes_into_group_jobs(hub, hub_slurm_dry_run):
    output = hub_slurm_dry_run
    n_small = len(hub["models"]) * len(hub["benchmarks"]) * sum(s <= hub["smallest_budget"] for s in hub["sizes"])
    grouped = len(re.findall(r"^    rule finetune_model:$", output, flags=re.M))
    alone = len(re.findall(r"^rule finetune_model:$", output, flags=re.M))
    assert (grouped, alone) == (n_small, 1350 - n_small)
    # group-components: finetune_small=10 in the profile: 10 zero-shot or small fine-tunes a job.
    assert len(re.findall(r"Group job finetune_small ", output)) == -(-n_small // 10)
    # The analysis (losses, fits, selections, scores, tables, figures) is one cluster job, the
    # table of the model terms another.
    assert len(re.findall(r"Group job analysis ", output)) == 2


def test_hub_models_are_pinned_and_fetched_before_their_jobs(tmp_path):
    """The sheet's revision reaches the download (a local rule: "localrules" in rules/download.smk)
    and every job loading the model; LoRA's target modules reach the job as separate words."""
    sheet = tmp_path / "models.tsv"
    sheet.write_text("name\tpath\tfamily\trevision\tpad_token\n"
                     "gpt2\tgpt2\tGPT2\t607a30d783dfa663caf39e06633721c8d4cfcd7e\teos\n"
                     "opt-350m\tfacebook/opt-350m\tOPT\t\teos\n")
    overlay = tmp_path / "pinned.yaml"
    overlay.write_text(f"models: {sheet}\nfinetune: {{method: lora, lora_target_modules: [c_attn, q_proj]}}\n")
    target = "results/hub/finetune/flan/gpt2/200.json"
    result = run_snakemake(tmp_path, "-n", "-p", "--configfile", str(HUB), str(overlay), "--", target)
    out = result.stdout + result.stderr
    download = re.search(r"rule download_models:.*?Shell command: (.*?)\n", out, flags=re.S).group(1)
    finetune = re.search(r"python -m lensllm\.training\.finetune .*", out).group(0)
    assert "--model gpt2 --out results/hub/downloads/gpt2.json --revision 607a30d783d" in download
    assert "--revision 607a30d783dfa663caf39e06633721c8d4cfcd7e" in finetune
    assert "--method lora" in finetune and "--lora-target-modules c_attn q_proj" in finetune
    assert "--device cuda --precision bf16" in finetune and "--gpu-slots" not in finetune
