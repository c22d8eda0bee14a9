# lensllm: choose which pre-trained language model to fine-tune, from small-data scaling laws.
# This file is an index: configuration, validation, the rule files, and the targets of `all`.


from snakemake.utils import min_version, validate

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/resources.smk"


if PUBLISHED:

    include: "rules/curves.smk"

else:

    include: "rules/data.smk"
    include: "rules/download.smk"
    include: "rules/zoo.smk"
    include: "rules/finetune.smk"
    include: "rules/ntk.smk"

    if BOUND and not SELECT:

        include: "rules/bound.smk"

    if "Adaptive" in config["methods"] and not SELECT:

        include: "rules/adaptive.smk"


include: "rules/fit.smk"


if SELECT:

    include: "rules/race.smk"
    include: "rules/recommend.smk"

    if FLOPS_PLAN:

        include: "rules/plan.smk"

else:

    include: "rules/select.smk"
    include: "rules/calibrate.smk"


include: "rules/report.smk"


if PUBLISHED:

    include: "rules/paper.smk"


rule all:
    default_target: True
    input:
        # Evaluation (grid or published curves): the selectors scored against the full-data truth;
        # select mode: the recommendation for data of size select.full_size; and the fits of every
        # law (lensllm.pipeline.layout).
        layout.all_outputs(
            RESULTS, BENCHMARKS, published=PUBLISHED, select=SELECT, bound=BOUND
        ),
