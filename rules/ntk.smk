# What the pre-trained weights say before any fine-tuning: LensLLM's NTK term per model x benchmark
# (lensllm.probes.ntk) and the weight-spectrum metrics of NLPMetrics per model (lensllm.probes.spectra).

from lensllm.pipeline.options import ntk_options, spectra_options


rule compute_ntk:
    input:
        model=model_directory,
        benchmark=f"{RESULTS}/data/{{benchmark}}.jsonl",
    output:
        f"{RESULTS}/ntk/{{benchmark}}/{{model}}.json",
    log:
        log_path("compute_ntk", "{benchmark}/{model}"),
    benchmark:
        f"{RESULTS}/benchmarks/compute_ntk/{{benchmark}}/{{model}}.tsv"
    conda:
        ENV
    threads: config["ntk"]["threads"]
    resources:
        mem_mb=ntk_mem_mb,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=ntk_gpus(),
    params:
        path=lambda wildcards: MODELS[wildcards.model]["path"],
        options=lambda wildcards: ntk_options(config, RESULTS, MODELS[wildcards.model]),
    shell:
        "python -m lensllm.probes.ntk --model {params.path} --model-name {wildcards.model}"
        " --benchmark {input.benchmark} --out {output} {params.options}"
        " --threads {threads} > {log} 2>&1"


rule measure_weight_spectra:
    input:
        model=model_directory,
    output:
        f"{RESULTS}/weights/{{model}}.json",
    log:
        log_path("measure_weight_spectra", "{model}"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=weights_mem_mb,
        runtime=lambda wildcards, attempt: 20 * attempt,
        gpu=ntk_gpus(),
    params:
        path=lambda wildcards: MODELS[wildcards.model]["path"],
        options=lambda wildcards: spectra_options(
            config, RESULTS, MODELS[wildcards.model]
        ),
    shell:
        "python -m lensllm.probes.spectra --model {params.path} --model-name {wildcards.model}"
        " --out {output} {params.options} > {log} 2>&1"


rule tabulate_model_terms:
    input:
        ntk=expand(
            f"{RESULTS}/ntk/{{benchmark}}/{{model}}.json",
            benchmark=BENCHMARKS,
            model=MODELS,
        ),
        weights=expand(f"{RESULTS}/weights/{{model}}.json", model=MODELS),
    output:
        ntk=f"{RESULTS}/ntk.tsv",
        weights=f"{RESULTS}/weight_metrics.tsv",
    log:
        log_path("tabulate_model_terms", "all"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../workflow/scripts/tabulate_model_terms.py"
