# Calibration of the predicting selectors' intervals: coverage and log score of each method's
# forecast at each budget, against the true losses at the target (see lensllm.selection.uncertainty).

# The selectors that predict a loss at the target.
from lensllm.selection.uncertainty import PREDICTING


rule assess_calibration:
    input:
        unpack(model_terms),
        losses=f"{RESULTS}/losses/{{benchmark}}.tsv",
    output:
        f"{RESULTS}/calibration/{{benchmark}}.tsv",
    log:
        log_path("assess_calibration"),
    benchmark:
        f"{RESULTS}/benchmarks/assess_calibration/{{benchmark}}.tsv"
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    params:
        methods=[m for m in config["methods"] if m in PREDICTING],
        target=config["target"],
        ratios=config["ratios"],
        settings=config["selection"],
        uncertainty=config.get("uncertainty", {}),
    script:
        "../workflow/scripts/assess_calibration.py"


rule make_calibration_table:
    input:
        expand(f"{RESULTS}/calibration/{{benchmark}}.tsv", benchmark=BENCHMARKS),
    output:
        tsv=f"{RESULTS}/calibration.tsv",
        md=f"{RESULTS}/calibration.md",
        coverage=f"{RESULTS}/coverage.tsv",
    log:
        log_path("make_calibration_table", "all"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../workflow/scripts/make_calibration_table.py"
