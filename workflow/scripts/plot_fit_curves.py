"""Snakemake adapter: loss table + fits -> the figure of curves, fitted laws and AtS transitions."""

import pandas as pd

from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.report.run_figures import plot_fit_curves
from lensllm.selection.evaluation import ats_transitions

log_to(snakemake.log[0])
table = read_losstable(snakemake.input.losses, snakemake.wildcards.benchmark)
transitions = ats_transitions(table, snakemake.params.ats_k, snakemake.params.ats_delta)
plot_fit_curves(table, pd.read_csv(snakemake.input.fits, sep="\t"), transitions, snakemake.output[0])
