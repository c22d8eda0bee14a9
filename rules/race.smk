# Select mode's rounds (select.max_rounds > 0; lensllm.selection.race, lensllm.selection.rounds):
# round 0 is the fine-tunes of every candidate at every size up to select.budget (rule
# finetune_model). The checkpoint race_round of round 0 calibrates AtS's line on them and decides
# which contenders round 1 fine-tunes at which size; the checkpoint of round r reads only round r-1's
# record and the fine-tunes it bought (rule finetune_contender), and decides round r+1's, until the
# pick's P(best) >= select.settle_p_best, select.max_rounds, or select.flops_budget (a total over
# round 0, every round and every benchmark, split equally between the benchmarks) is spent. The
# recommendation reads the last round's record (layout.last_race_record). A checkpoint is in no job group.

from lensllm.pipeline.config import race_ladder, rounds_on
from lensllm.pipeline.layout import race_record, race_round_inputs
from lensllm.pipeline.options import finetune_options, race_params

# Whether select mode runs rounds after round 0.
ROUNDS = rounds_on(config)
# The sizes the rounds may buy: 2 x budget, 4 x budget, ... (below N, data.max_train, select.reach when set).
RACE_LADDER = race_ladder(config) if ROUNDS else []


if ROUNDS:

    if RACE_LADDER and not config["finetune"]["one_job_per_size"]:

        # A contender at a size a round bought: one job per (model, size), as finetune_model with
        # one_job_per_size (which makes these too when it is on).
        rule finetune_contender:
            input:
                model=model_directory,
                benchmark=f"{RESULTS}/data/{{benchmark}}.jsonl",
            output:
                f"{RESULTS}/finetune/{{benchmark}}/{{model}}/{{size}}.json",
            log:
                log_path("finetune_contender", "{benchmark}/{model}/{size}"),
            benchmark:
                f"{RESULTS}/benchmarks/finetune_contender/{{benchmark}}/{{model}}/{{size}}.tsv"
            wildcard_constraints:
                size="|".join(str(size) for size in RACE_LADDER),
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
                options=lambda wildcards: finetune_options(
                    config, RESULTS, MODELS[wildcards.model]
                ),
            shell:
                "python -m lensllm.training.finetune --model {params.path} --model-name {wildcards.model}"
                " --benchmark {input.benchmark} --size {wildcards.size} --out {output}"
                " {params.options} --threads {threads} > {log} 2>&1"

    checkpoint race_round:
        input:
            # Round 0: its fine-tunes and the benchmark; round r: round r-1's record and what it bought.
            unpack(
                lambda wildcards: race_round_inputs(
                    RESULTS,
                    wildcards.benchmark,
                    wildcards.round,
                    MODELS,
                    SIZES,
                    checkpoints.race_round,
                )
            ),
        output:
            race_record(RESULTS, "{benchmark}", "{round}"),
        log:
            log_path("race_round", "{benchmark}/round{round}"),
        wildcard_constraints:
            round=r"\d+",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        params:
            models=list(MODELS),
            race=race_params(config, len(BENCHMARKS)),
        script:
            "../workflow/scripts/race_round.py"
