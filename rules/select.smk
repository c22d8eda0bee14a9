# Every selector at every data budget, then its scores against the true target losses.

from lensllm.pipeline.layout import adaptive_inputs


rule select_models:
    input:
        unpack(model_terms),
        # Adaptive's selections: on our grid from its real rounds (rules/adaptive.smk); on
        # published curves it runs here, with its prior's library when it has one.
        unpack(
            lambda wildcards: adaptive_inputs(
                RESULTS,
                wildcards.benchmark,
                BENCHMARKS,
                adaptive="Adaptive" in config.get("methods", []),
                published=PUBLISHED,
                prior=config["selection"].get("adaptive_prior", False),
            )
        ),
        losses=f"{RESULTS}/losses/{{benchmark}}.tsv",
    output:
        f"{RESULTS}/selections/{{benchmark}}.json",
    log:
        log_path("select_models"),
    benchmark:
        f"{RESULTS}/benchmarks/select_models/{{benchmark}}.tsv"
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        methods=config["methods"],
        target=config["target"],
        ratios=config["ratios"],
        settings=config["selection"],
    script:
        "../workflow/scripts/select_models.py"


rule score_selection:
    input:
        losses=f"{RESULTS}/losses/{{benchmark}}.tsv",
        selections=f"{RESULTS}/selections/{{benchmark}}.json",
        flops=f"{RESULTS}/finetune_flops/{{benchmark}}.tsv",
    output:
        selection=f"{RESULTS}/scores/{{benchmark}}.tsv",
        prediction_error=f"{RESULTS}/scores/{{benchmark}}.prediction_error.tsv",
        by_model=f"{RESULTS}/scores/{{benchmark}}.prediction_by_model.tsv",
    log:
        log_path("score_selection"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../workflow/scripts/score_selection.py"
