# The run's tables and figures; the figures also go into `snakemake --report`.


rule make_selection_table:
    input:
        selection=expand(f"{RESULTS}/scores/{{benchmark}}.tsv", benchmark=BENCHMARKS),
        prediction_error=expand(
            f"{RESULTS}/scores/{{benchmark}}.prediction_error.tsv",
            benchmark=BENCHMARKS,
        ),
        by_model=expand(
            f"{RESULTS}/scores/{{benchmark}}.prediction_by_model.tsv",
            benchmark=BENCHMARKS,
        ),
    output:
        tsv=f"{RESULTS}/selection.tsv",
        md=f"{RESULTS}/selection.md",
        tex=f"{RESULTS}/selection.tex",
        prediction_error=f"{RESULTS}/prediction_error.tsv",
        by_model=f"{RESULTS}/prediction_by_model.tsv",
        prediction_md=f"{RESULTS}/prediction_error.md",
        rmse_by_model=report(
            f"{RESULTS}/rmse_by_model.tsv",
            caption="../workflow/report/rmse_by_model.rst",
            category="Prediction error",
        ),
    log:
        log_path("make_selection_table", "all"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../workflow/scripts/make_selection_table.py"


rule plot_fit_curves:
    input:
        losses=f"{RESULTS}/losses/{{benchmark}}.tsv",
        fits=f"{RESULTS}/fits/{{benchmark}}.tsv",
    output:
        report(
            f"{RESULTS}/figures/fits_{{benchmark}}.png",
            caption="../workflow/report/fit_curves.rst",
            category="Fits",
            subcategory="{benchmark}",
        ),
    log:
        log_path("plot_fit_curves"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        ats_k=config["selection"]["ats_k"],
        ats_delta=config["selection"]["ats_delta"],
    script:
        "../workflow/scripts/plot_fit_curves.py"


rule plot_hessian:
    input:
        losses=f"{RESULTS}/losses/{{benchmark}}.tsv",
        runs=f"{RESULTS}/finetune_runs/{{benchmark}}.tsv",
    output:
        report(
            f"{RESULTS}/figures/hessian_{{benchmark}}.png",
            caption="../workflow/report/hessian.rst",
            category="Curvature",
            subcategory="{benchmark}",
        ),
    log:
        log_path("plot_hessian"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        ats_k=config["selection"]["ats_k"],
        ats_delta=config["selection"]["ats_delta"],
    script:
        "../workflow/scripts/plot_hessian.py"


rule plot_selection:
    input:
        f"{RESULTS}/selection.tsv",
    output:
        pearcorr=report(
            f"{RESULTS}/figures/pearcorr_vs_budget.png",
            caption="../workflow/report/pearcorr.rst",
            category="Selection",
        ),
        pearcorr_flops=report(
            f"{RESULTS}/figures/pearcorr_vs_flops.png",
            caption="../workflow/report/pearcorr_flops.rst",
            category="Selection",
        ),
        relacc=report(
            f"{RESULTS}/figures/relacc_vs_flops.png",
            caption="../workflow/report/relacc.rst",
            category="Selection",
        ),
    log:
        log_path("plot_selection", "all"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/plot_selection.py"


rule make_difficulty_table:
    input:
        expand(f"{RESULTS}/losses/{{benchmark}}.tsv", benchmark=BENCHMARKS),
    output:
        tsv=f"{RESULTS}/difficulty.tsv",
        md=f"{RESULTS}/difficulty.md",
    log:
        log_path("make_difficulty_table", "all"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        target=config["target"],
    script:
        "../workflow/scripts/make_difficulty_table.py"
