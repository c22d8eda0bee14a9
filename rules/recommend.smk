# Select mode: each candidate's forecast at N from the fine-tunes up to the budget, the pick, how
# sure it is and what would settle it (lensllm.selection.recommend), and a figure of the forecasts.

from lensllm.pipeline.config import repository_path
from lensllm.pipeline.layout import selection_plan_inputs
from lensllm.pipeline.options import recommend_params

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
        losses=f"{RESULTS}/losses/{{benchmark}}.tsv",
        flops=f"{RESULTS}/finetune_flops/{{benchmark}}.tsv",
        coverage=repository_path(config["select"]["coverage"], workflow.basedir),
    output:
        tsv=f"{RESULTS}/recommendation/{{benchmark}}.tsv",
        md=f"{RESULTS}/recommendation/{{benchmark}}.md",
    log:
        log_path("recommend_model"),
    benchmark:
        f"{RESULTS}/benchmarks/recommend_model/{{benchmark}}.tsv"
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        **recommend_params(config),
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
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        **recommend_params(config),
    script:
        "../workflow/scripts/plot_recommendation.py"
