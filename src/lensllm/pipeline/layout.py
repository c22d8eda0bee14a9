"""The results layout: where a run writes (results/<run_name>/), its logs, the files each job reads,
and the outputs of `rule all`, in one place.

Plain functions of the results directory, the benchmarks and the candidate models (values of
`lensllm.pipeline.config.candidate_models`); the rules call them with their wildcards' values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lensllm.pipeline.config import is_hub_model

# The figures of Lin et al. (2024) that paper mode draws (rule plot_paper_figure).
PAPER_FIGURES = (
    "difficulty",
    "rmsd_scatter",
    "zero_shot_lines",
    "pearcorr_vs_flops",
    "ablation_hyper",
    "ablation_size",
)


def results_dir(config: Mapping[str, Any]) -> str:
    """Where a run writes everything: results/<run_name>."""
    return f"results/{config['run_name']}"


def log_path(results: str, rule_name: str, name: str = "{benchmark}") -> str:
    """The log file of one job of `rule_name`."""
    return f"{results}/logs/{rule_name}/{name}.log"


def paper_dir(results: str) -> str:
    """Paper mode's tables and figures."""
    return f"{results}/paper"


def finetune_results(results: str, benchmark: str, models: Iterable[str], sizes: Iterable[int]) -> list[str]:
    """The fine-tuning results (one JSON per model and size) of `benchmark`, model by model."""
    sizes = list(sizes)
    return [f"{results}/finetune/{benchmark}/{m}/{s}.json" for m in models for s in sizes]


def benchmark_inputs(config: Mapping[str, Any], benchmark: str) -> list[str] | str:
    """What a benchmark is built from: its fetched sources, the user's files, or nothing (hub)."""
    user_data, hub = config.get("user_data", {}), config.get("hub_benchmarks", {})
    if benchmark in user_data:
        spec = user_data[benchmark]
        return [p for p in (spec["train_file"], spec.get("test_file")) if p]
    if benchmark in hub:
        return []
    return f"{config['sources_dir']}/{benchmark}.fetched"


def model_directory(results: str, name: str, model: Mapping[str, Any]) -> list[str] | str:
    """What loading candidate `name` needs first: the zoo model's directory, a hub model's download
    record (rule download_models); external directories and packages need nothing."""
    if model["zoo"]:
        return model["path"]
    if is_hub_model(model):
        return f"{results}/downloads/{name}.json"
    return []


def model_term_inputs(
    results: str, benchmark: str, models: Iterable[str], *, published: bool, spends_flops: bool
) -> dict[str, Any]:
    """On our grid: each model's NTK term and weight spectra, and the optimizer steps of each run;
    in every mode the FLOPs of each fine-tune, when a selector spends by them (`spends_flops`:
    Adaptive, Race)."""
    flops = {"flops": f"{results}/finetune_flops/{benchmark}.tsv"} if spends_flops else {}
    if published:
        return flops
    models = list(models)
    return flops | {
        "ntk": [f"{results}/ntk/{benchmark}/{m}.json" for m in models],
        "weights": [f"{results}/weights/{m}.json" for m in models],
        "runs": f"{results}/finetune_runs/{benchmark}.tsv",
    }


def adaptive_inputs(
    results: str, benchmark: str, benchmarks: Sequence[str], *, adaptive: bool, published: bool, prior: bool
) -> dict[str, Any]:
    """What Adaptive's selections need: on our grid its real rounds (rules/adaptive.smk); on
    published curves it runs in select_models, with its prior's library (the other benchmarks' loss
    tables, never the one evaluated) when it has one (`prior`)."""
    if not adaptive:
        return {}
    if published:
        if not prior:
            return {}
        return {"library": [f"{results}/losses/{b}.tsv" for b in benchmarks if b != benchmark]}
    return {"adaptive": f"{results}/adaptive/{benchmark}/selections.json"}


def adaptive_round0_sizes(sizes: Sequence[int], budgets: Iterable[int], first_round: int) -> list[int]:
    """The sizes of round 0 of every budget: round 0 of budget b is every size <= b / first_round (at
    least the two smallest), so their union is round 0 of the largest budget."""
    largest = max(budgets)
    return [s for s in sizes if s * first_round <= largest] or list(sizes[:2])


def adaptive_bought(results: str, benchmark: str, plan: str | Path) -> list[str]:
    """The fine-tunes round 1 bought, from the checkpoint adaptive_plan's JSON `plan`."""
    bought = sorted({tuple(buy) for p in json.loads(Path(plan).read_text()) for buy in p["buys"]})
    return [f"{results}/finetune/{benchmark}/{m}/{s}.json" for m, s in bought]


def planned_sizes(plan: str | Path) -> list[int]:
    """Zero-shot and the sizes the checkpoint plan_selection chose, from its JSON `plan`."""
    return [0, *json.loads(Path(plan).read_text())["sizes"]]


def selection_plan_inputs(results: str, benchmark: str, *, flops_plan: bool) -> dict[str, str]:
    """With select.flops_budget (`flops_plan`): the plan of the benchmark (the budget it bought)."""
    return {"plan": f"{results}/plan/{benchmark}.json"} if flops_plan else {}


def race_record(results: str, benchmark: str, round_index: int | str) -> str:
    """Select mode's rounds: the record the job of round `round_index` writes (rules/race.smk)."""
    return f"{results}/race/{benchmark}/round{round_index}.json"


def race_bought(results: str, benchmark: str, record: str | Path) -> list[str]:
    """The fine-tunes the round of `record` (a checkpoint race_round's JSON) bought for the next one."""
    bought = json.loads(Path(record).read_text())["rounds"][-1]["next"]
    return [f"{results}/finetune/{benchmark}/{m}/{s}.json" for m, s in bought]


def race_stopped(record: str | Path) -> bool:
    """Whether the round of `record` (a checkpoint race_round's JSON) is the last."""
    return bool(json.loads(Path(record).read_text())["rounds"][-1]["stopped"])


def race_round_inputs(results: str, benchmark: str, round_index: int | str, models: Iterable[str],
                      sizes: Sequence[int], checkpoint: Any) -> dict[str, Any]:
    """What the job of round `round_index` reads: round 0 the fine-tunes of every candidate at the
    training `sizes` of round 0 and the benchmark (for its number of training examples); round r
    round r-1's record and the fine-tunes it bought, asked of the checkpoint (`checkpoint`:
    Snakemake's checkpoints.race_round, whose .get() stops the DAG until that round has run)."""
    index = int(round_index)
    if index == 0:
        return {"jobs": finetune_results(results, benchmark, models, [s for s in sizes if s > 0]),
                "benchmark": f"{results}/data/{benchmark}.jsonl"}
    previous = checkpoint.get(benchmark=benchmark, round=str(index - 1)).output[0]
    return {"previous": previous, "jobs": race_bought(results, benchmark, previous)}


def last_race_record(benchmark: str, max_rounds: int, checkpoint: Any) -> str:
    """The record of the benchmark's last round: each round's checkpoint (`checkpoint`:
    checkpoints.race_round) asked in turn from round 0 until one says the rounds stopped (at most
    `max_rounds` + 1 rounds: race_round stops at select.max_rounds)."""
    for index in range(max_rounds + 1):
        record = checkpoint.get(benchmark=benchmark, round=str(index)).output[0]
        if race_stopped(record):
            return record
    raise ValueError(f"{benchmark}: none of rounds 0 ... {max_rounds} stopped (select.max_rounds)")


def paper_figure_inputs(results: str, benchmarks: Sequence[str], figure: str) -> dict[str, Any]:
    """What each paper figure is drawn from."""
    losses = [f"{results}/losses/{b}.tsv" for b in benchmarks]
    return {
        "difficulty": {"losses": losses},
        "rmsd_scatter": {"table": f"{paper_dir(results)}/table3.tsv"},
        "zero_shot_lines": {"losses": losses},
        "pearcorr_vs_flops": {"selection": f"{results}/selection.tsv"},
        "ablation_hyper": {"table": f"{paper_dir(results)}/ablation_hyper.tsv"},
        "ablation_size": {"table": f"{paper_dir(results)}/ablation_size.tsv"},
    }[figure]


def paper_outputs(results: str, benchmarks: Sequence[str]) -> list[str]:
    """Paper mode's tables, ablations and figures (Lin et al. 2024), and Race against AtS cell by cell."""
    paper = paper_dir(results)
    return [
        f"{results}/race.tsv",
        f"{results}/race.md",
        *[f"{paper}/{name}.{ext}" for name in ["table1", "table2", "table3"] for ext in ["tsv", "md", "tex"]],
        f"{paper}/ablation_hyper.tsv",
        f"{paper}/ablation_size.tsv",
        *[f"{paper}/{name}.{ext}" for name in PAPER_FIGURES for ext in ["png", "pdf"]],
        *[f"{paper}/curves_{b}.{ext}" for b in benchmarks for ext in ["png", "pdf"]],
    ]


def bound_outputs(results: str, benchmarks: Sequence[str]) -> list[str]:
    """The PAC-Bayes bound along the grid's curves (rules/bound.smk)."""
    return [
        f"{results}/bound.tsv",
        f"{results}/bound_correlation.tsv",
        f"{results}/bound.md",
        *[f"{results}/figures/bound_{b}.png" for b in benchmarks],
    ]


def grid_only_outputs(results: str, benchmarks: Sequence[str], *, bound: bool) -> list[str]:
    """Our grid only: what the weights say (NTK, spectra), the curvature along the curve, and the
    PAC-Bayes bound when the jobs measure it (`bound`)."""
    return [
        f"{results}/ntk.tsv",
        f"{results}/weight_metrics.tsv",
        *[f"{results}/figures/hessian_{b}.png" for b in benchmarks],
        *(bound_outputs(results, benchmarks) if bound else []),
    ]


def evaluation_outputs(results: str, benchmarks: Sequence[str], *, published: bool, bound: bool) -> list[str]:
    """Evaluation (grid or published curves): the selectors scored against the full-data truth."""
    return [
        f"{results}/selection.tsv",
        f"{results}/selection.md",
        f"{results}/selection.tex",
        f"{results}/prediction_error.tsv",
        f"{results}/prediction_error.md",
        f"{results}/calibration.tsv",
        f"{results}/calibration.md",
        f"{results}/difficulty.md",
        f"{results}/figures/pearcorr_vs_budget.png",
        f"{results}/figures/pearcorr_vs_flops.png",
        f"{results}/figures/relacc_vs_flops.png",
        *([] if published else grid_only_outputs(results, benchmarks, bound=bound)),
        *(paper_outputs(results, benchmarks) if published else []),
    ]


def select_outputs(results: str, benchmarks: Sequence[str]) -> list[str]:
    """Select mode: the recommendation for data of size select.full_size."""
    return [
        f"{results}/recommendation.tsv",
        f"{results}/recommendation.md",
        *[f"{results}/figures/recommendation_{b}.png" for b in benchmarks],
    ]


def all_outputs(results: str, benchmarks: Sequence[str], *, published: bool, select: bool, bound: bool) -> list[str]:
    """The targets of `rule all`: the evaluation or the recommendation, and the fits of every law."""
    return [
        *(select_outputs(results, benchmarks) if select else evaluation_outputs(results, benchmarks, published=published, bound=bound)),
        f"{results}/fits.tsv",
        *[f"{results}/figures/fits_{b}.png" for b in benchmarks],
    ]
