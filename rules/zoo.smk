# The zoo of tiny candidate models, pre-trained here on the offline text (benchmark test units left
# out), saved with save_pretrained and loaded like any hub model.

from lensllm.pipeline.options import zoo_spec_json


rule sample_pretraining_texts:
    input:
        sources=expand(
            f"{config['sources_dir']}/{{benchmark}}.fetched", benchmark=ZOO_CORPORA
        ),
        benchmarks=expand(f"{RESULTS}/data/{{benchmark}}.jsonl", benchmark=ZOO_CORPORA),
    output:
        f"{RESULTS}/zoo/texts.json.gz",
    log:
        log_path("sample_pretraining_texts", "all"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        sources_dir=lambda wildcards, input: os.path.dirname(input.sources[0]),
        corpora=ZOO_CORPORA,
        max_chars=config["pretraining"]["max_chars"],
        seed=config["pretraining"]["seed"],
    shell:
        "python -m lensllm.training.zoo texts --corpus-dir {params.sources_dir} --corpora {params.corpora}"
        " --exclude {input.benchmarks} --max-chars {params.max_chars} --seed {params.seed}"
        " --out {output} > {log} 2>&1"


rule train_tokenizer:
    input:
        f"{RESULTS}/zoo/texts.json.gz",
    output:
        directory(f"{RESULTS}/zoo/tokenizer"),
    log:
        log_path("train_tokenizer", "all"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        vocab_size=config["pretraining"]["vocab_size"],
        seed=config["pretraining"]["seed"],
    shell:
        "python -m lensllm.training.zoo tokenizer --texts {input} --vocab-size {params.vocab_size}"
        " --seed {params.seed} --out {output} > {log} 2>&1"


rule pretrain_model:
    input:
        texts=f"{RESULTS}/zoo/texts.json.gz",
        tokenizer=f"{RESULTS}/zoo/tokenizer",
    output:
        directory(f"{RESULTS}/zoo/{{model}}"),
    log:
        log_path("pretrain_model", "{model}"),
    benchmark:
        f"{RESULTS}/benchmarks/pretrain_model/{{model}}.tsv"
    priority: model_priority
    conda:
        ENV
    threads: config["pretraining"]["threads"]
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        spec=lambda wildcards: zoo_spec_json(MODELS[wildcards.model]["zoo"]),
    shell:
        "python -m lensllm.training.zoo pretrain --spec-json {params.spec:q} --tokenizer {input.tokenizer}"
        " --texts {input.texts} --threads {threads} --out {output} > {log} 2>&1"
