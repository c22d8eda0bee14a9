"""Snakemake adapter: raw sources -> one benchmark file (fixed test split, seeded train order)."""

import logging

from lensllm.data import build_benchmark, write_benchmark
from lensllm.logs import log_to

log_to(snakemake.log[0])
benchmark = build_benchmark(
    snakemake.wildcards.benchmark,
    snakemake.params.sources_dir,
    test_size=snakemake.params.test_size,
    max_train=snakemake.params.max_train,
    seed=snakemake.params.seed,
)
write_benchmark(benchmark, snakemake.output[0])
logging.info("%s: %d train, %d test examples", benchmark.name, len(benchmark.train), len(benchmark.test))
