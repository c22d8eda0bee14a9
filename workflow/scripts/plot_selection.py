"""Snakemake adapter: selection.tsv -> PearCorr-vs-budget and RelAcc-vs-FLOPs figures."""

import pandas as pd

from lensllm.logs import log_to
from lensllm.report import plot_pearcorr, plot_relacc_cost

log_to(snakemake.log[0])
selection = pd.read_csv(snakemake.input[0], sep="\t")
plot_pearcorr(selection, snakemake.output.pearcorr)
plot_relacc_cost(selection, snakemake.output.relacc)
