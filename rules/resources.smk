# Cluster resources of the fine-tuning jobs, in Snakemake's generic names (mem_mb, runtime in
# minutes, gpu): estimated before any job runs from the model's size and the data size, and
# multiplied by the attempt, so that a job killed for lack of memory or time is retried with more
# (`--retries`, set in config/profiles/*/config.yaml). Estimates, not measurements: the job's
# `benchmark:` file records what it really used. Site specifics (partition, account, GPU type) live
# only in the profiles.

# Parameter counts of hub models whose name does not say it (public model cards); names that do
# ("opt-1.3b", "LaMini-GPT-124M") are read, local directories are measured by their weight files.
KNOWN_PARAMS = {
    "gpt2": 124e6,
    "gpt2-medium": 355e6,
    "gpt2-large": 774e6,
    "gpt2-xl": 1.56e9,
    "t5-small": 60e6,
    "t5-base": 223e6,
    "google/t5-v1_1-base": 248e6,
    "google/mt5-base": 580e6,
    "google/mt5-large": 1.23e9,
    "facebook/bart-base": 140e6,
    "facebook/bart-large": 406e6,
    "facebook/bart-large-cnn": 406e6,
    "facebook/bart-large-xsum": 406e6,
    "microsoft/phi-2": 2.78e9,
    "microsoft/phi-1_5": 1.42e9,
    "google/switch-base-8": 620e6,
    "google/switch-base-16": 1.0e9,
    "google/switch-base-32": 2.0e9,
    "ai-forever/mGPT": 1.42e9,
}
# A model of unknown size is budgeted as 1B parameters (a retry doubles it).
DEFAULT_PARAMS = 1e9
# Throughput assumed for run times: FLOP/s per CPU thread (this project's CPU measures 1-3e10,
# README "Performance"), per GPU; and the cap of one request (7 days), longer than no partition's.
CPU_FLOPS_PER_THREAD = 1e10
GPU_FLOPS = 5e12
MAX_RUNTIME = 7 * 24 * 60


def model_params(model):
    """The estimated parameter count of candidate `model`, without loading it."""
    row = MODELS[model]
    if row["zoo"]:
        zoo, vocab = row["zoo"], config["pretraining"]["vocab_size"]
        d, layers, d_ff = zoo["d_model"], zoo["n_layers"], zoo["d_ff"]
        stacks = 2 if row["family"] == "t5" else 1  # encoder and decoder
        return vocab * d + stacks * layers * (4 * d * d + 2 * d * d_ff)
    path = row["path"]
    local = Path(path).expanduser()
    if local.is_dir():
        # 16-bit weights are 2 bytes a parameter (32-bit ones are over-counted, which is safe);
        # a quantized GGUF file is de-quantized on loading: count a parameter per byte.
        weights = sum(f.stat().st_size for f in local.glob("*.safetensors"))
        weights += sum(f.stat().st_size for f in local.glob("*.bin"))
        gguf = sum(f.stat().st_size for f in local.glob("*.gguf"))
        if weights or gguf:
            return weights / 2 + gguf
    if path in KNOWN_PARAMS:
        return KNOWN_PARAMS[path]
    size = re.search(r"(\d+(?:\.\d+)?)([MmBb])(?![A-Za-z])", f"{model} {path}")
    if size:
        return float(size.group(1)) * (1e6 if size.group(2) in "Mm" else 1e9)
    return DEFAULT_PARAMS


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


def finetune_mem_mb(wildcards, attempt):
    """Memory of a fine-tuning job: the Python stack, fp32 weights, gradients and AdamW states with
    room for activations (24 bytes a parameter; on a GPU the host only loads the weights: 8), and
    the tokenized subset (about 40 bytes a token as Python lists); times the attempt."""
    params = model_params(wildcards.model)
    per_param = 8 if config["finetune"].get("gpus", 0) else 24
    ft = config["finetune"]
    data = (
        max(finetune_sizes(wildcards))
        * (ft["max_len_source"] + ft["max_len_target"])
        * 40
    )
    return int(attempt * (1500 + (per_param * params + data) / 1e6))


def finetune_runtime(wildcards, attempt):
    """Minutes of a fine-tuning job: 6 x params x training tokens plus 2 x params x test tokens
    at the assumed throughput, doubled for safety, plus 10 minutes to load; times the attempt.
    """
    params = model_params(wildcards.model)
    train, test = finetune_tokens(wildcards)
    gpus = config["finetune"].get("gpus", 0)
    rate = (
        gpus * GPU_FLOPS
        if gpus
        else config["finetune"]["threads"] * CPU_FLOPS_PER_THREAD
    )
    minutes = 10 + 2 * (6 * params * train + 2 * params * test) / rate / 60
    return int(min(attempt * minutes, MAX_RUNTIME))


def finetune_group(wildcards):
    """With one job per size: zero-shot evaluations and the fine-tunes up to the smallest budget
    (target / largest ratio) form the group `finetune_small`, which a cluster profile packs many to
    a cluster job (`group-components`); the larger fine-tunes run alone."""
    small = config["target"] // max(config["ratios"])
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
