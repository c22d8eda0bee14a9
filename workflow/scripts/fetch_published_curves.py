"""Snakemake adapter: published curves of one benchmark -> validated loss table (TSV)."""

import logging

from lensllm.logs import log_to
from lensllm.curves.published import fetch_curves

log_to(snakemake.log[0])
table = fetch_curves(
    snakemake.wildcards.benchmark,
    snakemake.output[0],
    curves_dir=snakemake.params.curves_dir,
    base_url=snakemake.params.curves_url,
    max_params=snakemake.params.max_params,
)
logging.info("%s: %d models, sizes %s", table.benchmark, len(table.models), list(table.sizes))
