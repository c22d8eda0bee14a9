"""Snakemake adapter: per-benchmark scores -> selection.tsv, .md, .tex and prediction_error.tsv."""

import pandas as pd

from lensllm.analysis import write_tsv
from lensllm.logs import log_to
from lensllm.report import write_selection_tables

log_to(snakemake.log[0])
selection = pd.concat([pd.read_csv(p, sep="\t") for p in snakemake.input.selection], ignore_index=True)
write_tsv(selection, snakemake.output.tsv)
write_selection_tables(selection, snakemake.output.md, snakemake.output.tex)
errors = pd.concat([pd.read_csv(p, sep="\t") for p in snakemake.input.prediction_error], ignore_index=True)
write_tsv(errors, snakemake.output.prediction_error)
