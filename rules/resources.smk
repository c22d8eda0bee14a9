# Cluster resources of the fine-tuning jobs, in Snakemake's generic names (mem_mb, runtime in
# minutes, gpu): estimated before any job runs from the model's size and the data size, and
# multiplied by the attempt, so that a job killed for lack of memory or time is retried with more
# (`--retries`, set in config/profiles/*/config.yaml). Estimates, not measurements: the job's
# `benchmark:` file records what it really used. Site specifics (partition, account, GPU type) live
# only in the profiles.

# The estimates themselves live in lensllm.training.resources (pure Python, imported from the source
# tree like lensllm.pipeline, see rules/common.smk): parameters from a directory's weight files, a hub
# name or the model cards; memory and run time where the job runs (CPU or GPU, by precision, method
# and micro-batch); `python -m lensllm.training.resources` prints them for a config.
from lensllm.curves.budgets import budget_of
from lensllm.training.resources import estimate_finetune, params_from_path, zoo_params


def model_params(model):
    """The estimated parameter count of candidate `model`, without loading it."""
    row = MODELS[model]
    if row["zoo"]:
        return zoo_params(row["zoo"], config["pretraining"]["vocab_size"])
    return params_from_path(model, row["path"])


def model_priority(wildcards):
    """Larger candidates first (estimated parameters, in thousands): their fine-tunes are the
    longest jobs of a grid, and one started last ends the run alone; so their pre-training too.
    """
    return model_params(wildcards.model) // 1000


def finetune_gpus():
    """GPUs a fine-tuning job books: finetune.gpus, by default 1 on a CUDA device (or with GPU
    slots on a workstation), else 0."""
    ft = config["finetune"]
    if "gpus" in ft:
        return ft["gpus"]
    return int(
        ft.get("device", "auto").startswith("cuda") or ft.get("gpu_slots", 0) > 0
    )


def ntk_gpus():
    """GPUs an NTK or weight-spectra job books: 1 when ntk.device is a CUDA device, else 0."""
    return int(config["ntk"].get("device", "auto").startswith("cuda"))


def finetune_sizes(wildcards):
    """The data sizes one fine-tuning job runs: its own, or every size of the grid."""
    return [int(wildcards.size)] if "size" in wildcards.keys() else ALL_SIZES


def finetune_tokens(wildcards):
    """Token positions one fine-tuning job processes: training (every epoch) and test evaluations."""
    ft = config["finetune"]
    length = ft["max_len_source"] + ft["max_len_target"]
    sizes = finetune_sizes(wildcards)
    train = sum(sizes) * ft["epochs"] * length
    test = len(sizes) * config["data"]["test_size"] * length
    return train, test


def finetune_estimate(wildcards, attempt):
    """lensllm.training.resources' estimate of a fine-tuning job where the config runs it; times the attempt."""
    ft = config["finetune"]
    train, test = finetune_tokens(wildcards)
    length = ft["max_len_source"] + ft["max_len_target"]
    return estimate_finetune(
        model_params(wildcards.model),
        train,
        test,
        device=ft.get("device", "auto"),
        precision=ft.get("precision", "fp32"),
        method=ft.get("method", "full"),
        micro_batch=ft.get("micro_batch_size") or ft["batch_size"],
        seq_len=length,
        data_tokens=max(finetune_sizes(wildcards)) * length,
        threads=ft["threads"],
        gpus=finetune_gpus(),
        flops_per_second=ft.get("flops_per_second"),
        attempt=attempt,
    )


def finetune_mem_mb(wildcards, attempt):
    """Host memory of a fine-tuning job (MB; lensllm.training.resources)."""
    return finetune_estimate(wildcards, attempt).host_mem_mb


def finetune_gpu_mem_mb(wildcards, attempt):
    """GPU memory of a fine-tuning job (MB; 0 on the CPU; lensllm.training.resources)."""
    return finetune_estimate(wildcards, attempt).gpu_mem_mb


def finetune_runtime(wildcards, attempt):
    """Minutes of a fine-tuning job (lensllm.training.resources)."""
    return finetune_estimate(wildcards, attempt).minutes


def finetune_group(wildcards):
    """With one job per size: zero-shot evaluations and the fine-tunes up to the smallest budget
    (target / largest ratio) form the group `finetune_small`, which a cluster profile packs many to
    a cluster job (`group-components`); the larger fine-tunes run alone."""
    small = budget_of(config["target"], max(config["ratios"]))
    return "finetune_small" if int(wildcards.size) <= small else None


def ntk_mem_mb(wildcards, attempt):
    """Memory of an NTK job: the Python stack, fp32 weights with room for one example's
    activations (8 bytes a parameter), and the probes' stacked gradients over the parameters the
    kernel uses (4 bytes each, twice for the copy into the stack); times the attempt."""
    params = model_params(wildcards.model)
    used = min(params, config["ntk"]["max_params"])
    return int(
        attempt * (1500 + (8 * params + 8 * config["ntk"]["probes"] * used) / 1e6)
    )


def weights_mem_mb(wildcards, attempt):
    """Memory of a weight-spectra job: the Python stack and the fp32 weights, twice (a float64
    copy of one layer at a time is small next to them); times the attempt."""
    return int(attempt * (1500 + 8 * model_params(wildcards.model) / 1e6))
