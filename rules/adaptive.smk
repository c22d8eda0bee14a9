# Adaptive's two rounds on our grid (lensllm.selection.adaptive): round 0 fine-tunes every model at every
# size up to budget / adaptive_first_round; the checkpoint adaptive_plan reads only those fine-tunes
# and decides which sizes round 1 buys; adaptive_select reads round 0 and the sizes bought, nothing
# else. On published curves Adaptive buys cells of the table inside select_models instead. Neither
# job is in a job group: Snakemake cannot group a checkpoint, nor a job whose inputs it decides.

from lensllm.curves.budgets import budgets_for
from lensllm.pipeline.layout import (
    adaptive_bought,
    adaptive_round0_sizes,
    finetune_results,
)

# The budgets of the evaluation: target / ratio.
ADAPTIVE_BUDGETS = list(budgets_for(config["target"], config["ratios"]).values())
# Round 0 of every budget: every size <= budget / first_round (at least the two smallest), so the
# union is round 0 of the largest budget; its fine-tunes on each benchmark.
ADAPTIVE_ROUND0 = adaptive_round0_sizes(
    SIZES, ADAPTIVE_BUDGETS, config["selection"].get("adaptive_first_round", 2)
)


checkpoint adaptive_plan:
    input:
        round0=lambda wildcards: finetune_results(
            RESULTS, wildcards.benchmark, MODELS, ADAPTIVE_ROUND0
        ),
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
        budgets=ADAPTIVE_BUDGETS,
        target=config["target"],
        settings=config["selection"],
    script:
        "../workflow/scripts/adaptive_plan.py"


rule adaptive_select:
    input:
        plan=f"{RESULTS}/adaptive/{{benchmark}}/plan.json",
        round0=lambda wildcards: finetune_results(
            RESULTS, wildcards.benchmark, MODELS, ADAPTIVE_ROUND0
        ),
        # The fine-tunes round 1 bought: known once the checkpoint has run.
        bought=lambda wildcards: adaptive_bought(
            RESULTS,
            wildcards.benchmark,
            checkpoints.adaptive_plan.get(**wildcards).output[0],
        ),
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
