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
    include: "rules/zoo.smk"
    include: "rules/finetune.smk"
    include: "rules/ntk.smk"


include: "rules/fit.smk"
include: "rules/select.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/selection.tsv",
        f"{RESULTS}/selection.md",
        f"{RESULTS}/selection.tex",
        f"{RESULTS}/prediction_error.tsv",
        f"{RESULTS}/prediction_error.md",
        f"{RESULTS}/fits.tsv",
        expand(f"{RESULTS}/figures/fits_{{benchmark}}.png", benchmark=BENCHMARKS),
        f"{RESULTS}/figures/pearcorr_vs_budget.png",
        f"{RESULTS}/figures/relacc_vs_flops.png",
        GRID_ONLY_OUTPUTS,
