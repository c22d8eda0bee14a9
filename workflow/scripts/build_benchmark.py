"""Snakemake adapter: raw sources, a hub dataset or the user's own files -> one benchmark file (fixed test split, seeded train order).

`params.user`, when set, is a dict of keyword arguments of `lensllm.data.user.load_user_benchmark`
(train_file, source_field/target_field or text_field, test_file, test_size, max_train, min_train,
...); `params.test_size`, `params.max_train` and `params.seed` fill the ones it leaves out, and the
benchmark is named after the wildcard.
"""

import logging

from lensllm.data.benchmark import write_benchmark
from lensllm.data.builders import build_benchmark
from lensllm.data.hub import load_hub_benchmark
from lensllm.data.user import load_user_benchmark
from lensllm.logs import log_to

log_to(snakemake.log[0])
name, params = snakemake.wildcards.benchmark, snakemake.params
user = getattr(params, "user", None)
if user:
    defaults = {key: getattr(params, key) for key in ("test_size", "max_train", "seed")
                if hasattr(params, key)}
    benchmark = load_user_benchmark(**{**defaults, **user, "name": name})
elif getattr(params, "hub", None):
    benchmark = load_hub_benchmark(**params.hub, name=name, test_size=params.test_size, max_train=params.max_train, seed=params.seed)
else:
    benchmark = build_benchmark(name, params.sources_dir, test_size=params.test_size, max_train=params.max_train, seed=params.seed)
write_benchmark(benchmark, snakemake.output[0])
logging.info("%s: %d train, %d test examples", benchmark.name, len(benchmark.train), len(benchmark.test))
