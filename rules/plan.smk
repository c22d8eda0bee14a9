# Select mode with select.flops_budget: the sizes that the FLOPs budget affords on each benchmark
# (lensllm.training.plan), chosen before any fine-tune runs. A checkpoint: collect_losses asks it which
# fine-tunes make the loss table, and the recommendation reads the chosen budget from its JSON.

from lensllm.pipeline.options import plan_options


checkpoint plan_selection:
    input:
        models=[model["path"] for model in MODELS.values() if model["zoo"]],
        benchmark=f"{RESULTS}/data/{{benchmark}}.jsonl",
    output:
        f"{RESULTS}/plan/{{benchmark}}.json",
    log:
        log_path("plan_selection"),
    benchmark:
        f"{RESULTS}/benchmarks/plan_selection/{{benchmark}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=lambda wildcards, attempt: 10 * attempt,
    params:
        options=plan_options(config, MODELS, SIZES),
    shell:
        "python -m lensllm.training.plan {params.options} --benchmark {input.benchmark}"
        " --out {output} > {log} 2>&1"
