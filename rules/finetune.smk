# The fine-tuning grid: every candidate model x benchmark x size (0 = zero-shot), real torch
# training; one small JSON per (model, benchmark, size), gathered into the loss table.
#
# With `finetune.one_job_per_size: false` (the offline default) one job fine-tunes one model on one
# benchmark at every size, one size after the other, so that torch and transformers are imported
# once per job instead of once per size (about 4 s each on a CPU, more than a small fine-tune);
# each size still writes its own JSON, atomically. With `true` (clusters, large models) every
# (model, benchmark, size) is its own job; so too in select mode with select.flops_budget, where
# the checkpoint plan_selection decides which sizes are fine-tuned (rules/plan.smk).

from lensllm.pipeline.layout import finetune_results, planned_sizes
from lensllm.pipeline.options import finetune_options

if config["finetune"]["one_job_per_size"] or FLOPS_PLAN:

    rule finetune_model:
        input:
            model=model_directory,
            benchmark=f"{RESULTS}/data/{{benchmark}}.jsonl",
        output:
            f"{RESULTS}/finetune/{{benchmark}}/{{model}}/{{size}}.json",
        log:
            log_path("finetune_model", "{benchmark}/{model}/{size}"),
        benchmark:
            f"{RESULTS}/benchmarks/finetune_model/{{benchmark}}/{{model}}/{{size}}.tsv"
        priority: model_priority
        group:
            finetune_group
        conda:
            ENV
        threads: config["finetune"]["threads"]
        resources:
            mem_mb=finetune_mem_mb,
            runtime=finetune_runtime,
            gpu=finetune_gpus(),
            gpu_mem_mb=finetune_gpu_mem_mb,
        params:
            path=lambda wildcards: MODELS[wildcards.model]["path"],
            options=lambda wildcards: finetune_options(
                config, RESULTS, MODELS[wildcards.model]
            ),
        shell:
            "python -m lensllm.training.finetune --model {params.path} --model-name {wildcards.model}"
            " --benchmark {input.benchmark} --size {wildcards.size} --out {output}"
            " {params.options} --threads {threads} > {log} 2>&1"

else:

    rule finetune_model:
        input:
            model=model_directory,
            benchmark=f"{RESULTS}/data/{{benchmark}}.jsonl",
        output:
            [
                f"{RESULTS}/finetune/{{benchmark}}/{{model}}/{size}.json"
                for size in ALL_SIZES
            ],
        log:
            log_path("finetune_model", "{benchmark}/{model}"),
        benchmark:
            f"{RESULTS}/benchmarks/finetune_model/{{benchmark}}/{{model}}.tsv"
        priority: model_priority
        conda:
            ENV
        threads: config["finetune"]["threads"]
        resources:
            mem_mb=finetune_mem_mb,
            runtime=finetune_runtime,
            gpu=finetune_gpus(),
            gpu_mem_mb=finetune_gpu_mem_mb,
        params:
            path=lambda wildcards: MODELS[wildcards.model]["path"],
            sizes=" ".join(str(s) for s in ALL_SIZES),
            options=lambda wildcards: finetune_options(
                config, RESULTS, MODELS[wildcards.model]
            ),
        shell:
            "python -m lensllm.training.finetune --model {params.path} --model-name {wildcards.model}"
            " --benchmark {input.benchmark} --size {params.sizes} --out {output}"
            " {params.options} --threads {threads} > {log} 2>&1"


rule collect_losses:
    input:
        # ALL_SIZES, or with select.flops_budget zero-shot and the sizes the plan of the benchmark
        # chose (asking the checkpoint plan_selection).
        lambda wildcards: finetune_results(
            RESULTS,
            wildcards.benchmark,
            MODELS,
            (
                planned_sizes(
                    checkpoints.plan_selection.get(
                        benchmark=wildcards.benchmark
                    ).output[0]
                )
                if FLOPS_PLAN
                else ALL_SIZES
            ),
        ),
    output:
        losses=f"{RESULTS}/losses/{{benchmark}}.tsv",
        flops=f"{RESULTS}/finetune_flops/{{benchmark}}.tsv",
        facts=f"{RESULTS}/models/{{benchmark}}.tsv",
        runs=f"{RESULTS}/finetune_runs/{{benchmark}}.tsv",
    log:
        log_path("collect_losses"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        families={name: model["family"] for name, model in MODELS.items()},
    script:
        "../workflow/scripts/collect_losses.py"
