# Adaptive's two rounds on our grid (lensllm.selection.adaptive): round 0 fine-tunes every model at every
# size up to budget / adaptive_first_round; the checkpoint adaptive_plan reads only those fine-tunes
# and decides which sizes round 1 buys; adaptive_select reads round 0 and the sizes bought, nothing
# else. On published curves Adaptive buys cells of the table inside select_models instead. Neither
# job is in a job group: Snakemake cannot group a checkpoint, nor a job whose inputs it decides.


checkpoint adaptive_plan:
    input:
        round0=adaptive_round0,
    output:
        f"{RESULTS}/adaptive/{{benchmark}}/plan.json",
    log:
        log_path("adaptive_plan"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        sizes=ALL_SIZES,
        budgets=adaptive_budgets(),
        target=config["target"],
        settings=config["selection"],
    script:
        "../workflow/scripts/adaptive_plan.py"


rule adaptive_select:
    input:
        plan=f"{RESULTS}/adaptive/{{benchmark}}/plan.json",
        round0=adaptive_round0,
        bought=adaptive_bought,
    output:
        f"{RESULTS}/adaptive/{{benchmark}}/selections.json",
    log:
        log_path("adaptive_select"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        models=list(MODELS),
        sizes=ALL_SIZES,
        target=config["target"],
        settings=config["selection"],
    script:
        "../workflow/scripts/adaptive_select.py"
