# The offline benchmarks: raw text sources fetched once (PyPI and Debian only), then a fixed test
# split and nested, seeded training subsets per benchmark.


rule fetch_sources:
    output:
        expand(f"{config['sources_dir']}/{{benchmark}}.fetched", benchmark=BENCHMARKS),
    log:
        log_path("fetch_sources", "all"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    params:
        dest=lambda wildcards, output: os.path.dirname(output[0]),
        only=",".join(BENCHMARKS),
    shell:
        "python -m lensllm.corpora fetch --dest {params.dest} --only {params.only}"
        " > {log} 2>&1 && touch {output}"


rule build_benchmark:
    input:
        f"{config['sources_dir']}/{{benchmark}}.fetched",
    output:
        f"{RESULTS}/data/{{benchmark}}.jsonl",
    log:
        log_path("build_benchmark"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        sources_dir=lambda wildcards, input: os.path.dirname(input[0]),
        test_size=config["data"]["test_size"],
        max_train=config["data"]["max_train"],
        seed=config["data"]["seed"],
    script:
        "../workflow/scripts/build_benchmark.py"
