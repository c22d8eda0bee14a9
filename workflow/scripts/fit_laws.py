"""Snakemake adapter: loss table -> every law fitted to every curve (fits TSV)."""

import logging

from lensllm.atomic import write_tsv
from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.selection.evaluation import fit_all_laws

log_to(snakemake.log[0])
fits = fit_all_laws(read_losstable(snakemake.input[0], snakemake.wildcards.benchmark), snakemake.params.laws, snakemake.params.seed)
for _, row in fits[fits["status"] == "failed"].iterrows():
    logging.warning("%s: %s fit of %s failed: %s", row["benchmark"], row["law"], row["model"], row["message"])
write_tsv(fits, snakemake.output[0])
