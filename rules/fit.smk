# Every scaling law fitted to every model's whole curve (all non-zero sizes).


rule fit_laws:
    input:
        f"{RESULTS}/losses/{{benchmark}}.tsv",
    output:
        f"{RESULTS}/fits/{{benchmark}}.tsv",
    log:
        log_path("fit_laws"),
    benchmark:
        f"{RESULTS}/benchmarks/fit_laws/{{benchmark}}.tsv"
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        laws=config["laws"],
        seed=config["selection"]["seed"],
    script:
        "../workflow/scripts/fit_laws.py"


rule collect_fits:
    input:
        expand(f"{RESULTS}/fits/{{benchmark}}.tsv", benchmark=BENCHMARKS),
    output:
        f"{RESULTS}/fits.tsv",
    log:
        log_path("collect_fits", "all"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../workflow/scripts/concat_tables.py"
