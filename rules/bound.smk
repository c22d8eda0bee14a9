# LensLLM's Hessian-based PAC-Bayes bound (Ju et al. 2022) along every curve of the grid: the
# measured generalization gap against the bound's Hessian distance term and remainder scale
# (lensllm.probes.bound), from the training loss and Hessian distance each fine-tuning job records.


rule plot_bound:
    input:
        losses=f"{RESULTS}/losses/{{benchmark}}.tsv",
        runs=f"{RESULTS}/finetune_runs/{{benchmark}}.tsv",
    output:
        report(
            f"{RESULTS}/figures/bound_{{benchmark}}.png",
            caption="../workflow/report/bound.rst",
            category="Curvature",
            subcategory="{benchmark}",
        ),
    log:
        log_path("plot_bound"),
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
        "../workflow/scripts/bound.py"


rule tabulate_bound:
    input:
        losses=expand(f"{RESULTS}/losses/{{benchmark}}.tsv", benchmark=BENCHMARKS),
        runs=expand(f"{RESULTS}/finetune_runs/{{benchmark}}.tsv", benchmark=BENCHMARKS),
    output:
        terms=f"{RESULTS}/bound.tsv",
        correlation=report(
            f"{RESULTS}/bound_correlation.tsv",
            caption="../workflow/report/bound_correlation.rst",
            category="Curvature",
        ),
        md=f"{RESULTS}/bound.md",
    log:
        log_path("tabulate_bound", "all"),
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
        benchmarks=BENCHMARKS,
    script:
        "../workflow/scripts/bound.py"
