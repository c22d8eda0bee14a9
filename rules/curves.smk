# The loss tables of the paper mode: the published curves, downloaded and checked or copied.


rule fetch_published_curves:
    output:
        f"{RESULTS}/losses/{{benchmark}}.tsv",
    log:
        log_path("fetch_published_curves"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        curves_dir=config["curves_dir"],
        curves_url=config["curves_url"],
    script:
        "../workflow/scripts/fetch_published_curves.py"
