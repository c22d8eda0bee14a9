# Hub candidates fetched into the Hugging Face cache before any job loads them, pinned by the
# models sheet's revision column. A local rule: it runs where Snakemake runs (a login node with
# network), since compute nodes often have none; the cache (HF_HOME) must be shared with them.

from lensllm.pipeline.options import download_options


localrules:
    download_models,


rule download_models:
    output:
        f"{RESULTS}/downloads/{{model}}.json",
    log:
        log_path("download_models", "{model}"),
    conda:
        ENV
    params:
        path=lambda wildcards: MODELS[wildcards.model]["path"],
        options=lambda wildcards: download_options(MODELS[wildcards.model]),
    shell:
        "python -m lensllm.training.download --model {params.path} --out {output}"
        " {params.options} > {log} 2>&1"
