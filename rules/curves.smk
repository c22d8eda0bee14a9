# Paper mode: the published curves (downloaded and checked, or copied) as loss tables, and the
# analytic FLOPs of each fine-tune they stand for (6 x params x tokens).


rule fetch_published_curves:
    output:
        f"{RESULTS}/losses/{{benchmark}}.tsv",
    log:
        log_path("fetch_published_curves"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        curves_dir=config["curves_dir"],
        curves_url=config["curves_url"],
        max_params=config.get("max_params"),
    script:
        "../workflow/scripts/fetch_published_curves.py"


rule estimate_finetune_flops:
    input:
        f"{RESULTS}/losses/{{benchmark}}.tsv",
    output:
        f"{RESULTS}/finetune_flops/{{benchmark}}.tsv",
    log:
        log_path("estimate_finetune_flops"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        cost=lambda wildcards: config["cost"][wildcards.benchmark],
    script:
        "../workflow/scripts/estimate_finetune_flops.py"
