# Select mode: each candidate's forecast at N from the fine-tunes up to the budget, the pick, how
# sure it is and what would settle it (lensllm.selection.recommend), and a figure of the forecasts.
# With rounds (select.max_rounds > 0, rules/race.smk) the pick is the lowest expected loss at N after
# the last round, read from that round's record, beside round 0's forecasts of every method.

from lensllm.pipeline.config import repository_path, rounds_flops_budget
from lensllm.pipeline.layout import last_race_record, selection_plan_inputs
from lensllm.pipeline.options import race_params, recommend_params

# The NTK terms and optimizer steps, when a LensLLM-NTK method forecasts.
NEEDS_MODEL_TERMS = any(
    m.startswith("LensLLM-NTK") for m in config["select"]["methods"]
)


rule recommend_model:
    input:
        unpack(lambda wildcards: model_terms(wildcards) if NEEDS_MODEL_TERMS else {}),
        # With select.flops_budget: the plan of the benchmark (the budget it bought).
        unpack(
            lambda wildcards: selection_plan_inputs(
                RESULTS, wildcards.benchmark, flops_plan=FLOPS_PLAN
            )
        ),
        # With rounds: the last round's record (asking each round's checkpoint in turn).
        unpack(
            lambda wildcards: (
                {
                    "rounds": last_race_record(
                        wildcards.benchmark,
                        config["select"]["max_rounds"],
                        checkpoints.race_round,
                    )
                }
                if ROUNDS
                else {}
            )
        ),
        losses=f"{RESULTS}/losses/{{benchmark}}.tsv",
        flops=f"{RESULTS}/finetune_flops/{{benchmark}}.tsv",
        coverage=repository_path(config["select"]["coverage"], workflow.basedir),
        # The benchmark file: how many rows of the user's file were skipped (skip_bad_rows).
        data=f"{RESULTS}/data/{{benchmark}}.jsonl",
    output:
        tsv=f"{RESULTS}/recommendation/{{benchmark}}.tsv",
        md=f"{RESULTS}/recommendation/{{benchmark}}.md",
    log:
        log_path("recommend_model"),
    benchmark:
        f"{RESULTS}/benchmarks/recommend_model/{{benchmark}}.tsv"
    # With rounds the inputs are the checkpoints' (no job group can hold such a job).
    group:
        None if ROUNDS else "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        **recommend_params(config),
        # With rounds: their settings (a change reruns the recommendation and, through it, the rounds).
        **({"race": race_params(config, len(BENCHMARKS))} if ROUNDS else {}),
    script:
        "../workflow/scripts/recommend_model.py"


rule make_recommendation:
    input:
        tsv=expand(f"{RESULTS}/recommendation/{{benchmark}}.tsv", benchmark=BENCHMARKS),
        md=expand(f"{RESULTS}/recommendation/{{benchmark}}.md", benchmark=BENCHMARKS),
    output:
        tsv=f"{RESULTS}/recommendation.tsv",
        md=report(
            f"{RESULTS}/recommendation.md",
            caption="../workflow/report/recommendation.rst",
            category="Recommendation",
        ),
    log:
        log_path("make_recommendation", "all"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        # With rounds: the FLOPs budget, a total over every round and benchmark.
        **({"flops_budget": rounds_flops_budget(config)} if ROUNDS else {}),
    script:
        "../workflow/scripts/make_recommendation.py"


rule plot_recommendation:
    input:
        unpack(lambda wildcards: model_terms(wildcards) if NEEDS_MODEL_TERMS else {}),
        # With select.flops_budget: the plan of the benchmark (the budget it bought).
        unpack(
            lambda wildcards: selection_plan_inputs(
                RESULTS, wildcards.benchmark, flops_plan=FLOPS_PLAN
            )
        ),
        # With rounds: the last round's record (each round's fine-tunes, the forecasts at N).
        unpack(
            lambda wildcards: (
                {
                    "rounds": last_race_record(
                        wildcards.benchmark,
                        config["select"]["max_rounds"],
                        checkpoints.race_round,
                    )
                }
                if ROUNDS
                else {}
            )
        ),
        losses=f"{RESULTS}/losses/{{benchmark}}.tsv",
    output:
        report(
            f"{RESULTS}/figures/recommendation_{{benchmark}}.png",
            caption="../workflow/report/recommendation_figure.rst",
            category="Recommendation",
            subcategory="{benchmark}",
        ),
    log:
        log_path("plot_recommendation"),
    # With rounds the inputs are the checkpoints' (no job group can hold such a job).
    group:
        None if ROUNDS else "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        **recommend_params(config),
        **({"race": race_params(config, len(BENCHMARKS))} if ROUNDS else {}),
    script:
        "../workflow/scripts/plot_recommendation.py"
