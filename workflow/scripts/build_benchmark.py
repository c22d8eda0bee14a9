"""Snakemake adapter: raw sources or a hub dataset -> one benchmark file (fixed test split, seeded train order)."""

import logging

from lensllm.data import build_benchmark, load_hub_benchmark, write_benchmark
from lensllm.logs import log_to

log_to(snakemake.log[0])
name, params = snakemake.wildcards.benchmark, snakemake.params
if params.hub:
    benchmark = load_hub_benchmark(**params.hub, name=name, test_size=params.test_size, max_train=params.max_train, seed=params.seed)
else:
    benchmark = build_benchmark(name, params.sources_dir, test_size=params.test_size, max_train=params.max_train, seed=params.seed)
write_benchmark(benchmark, snakemake.output[0])
logging.info("%s: %d train, %d test examples", benchmark.name, len(benchmark.train), len(benchmark.test))
