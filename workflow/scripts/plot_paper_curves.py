"""Snakemake adapter: loss table + fits -> each model's curve with the rectified and vanilla laws (PNG and PDF)."""

import pandas as pd

from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.report.run_figures import plot_fit_curves
from lensllm.selection.evaluation import ats_transitions

log_to(snakemake.log[0])
table = read_losstable(snakemake.input.losses, snakemake.wildcards.benchmark)
fits = pd.read_csv(snakemake.input.fits, sep="\t")
fits = fits[fits["law"].isin(["rectified", "vanilla"])]
transitions = ats_transitions(table, snakemake.params.ats_k, snakemake.params.ats_delta)
plot_fit_curves(table, fits, transitions, [snakemake.output.png, snakemake.output.pdf])
