"""Snakemake adapter: concatenate TSV tables with the same columns."""

import pandas as pd

from lensllm.atomic import write_tsv
from lensllm.logs import log_to

log_to(snakemake.log[0])
write_tsv(pd.concat([pd.read_csv(p, sep="\t") for p in snakemake.input], ignore_index=True), snakemake.output[0])
