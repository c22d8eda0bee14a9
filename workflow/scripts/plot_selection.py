"""Snakemake adapter: selection.tsv -> PearCorr against the budget, PearCorr and RelAcc against FLOPs."""

import pandas as pd

from lensllm.logs import log_to
from lensllm.report.run_figures import plot_metric_cost, plot_pearcorr

log_to(snakemake.log[0])
selection = pd.read_csv(snakemake.input[0], sep="\t")
plot_pearcorr(selection, snakemake.output.pearcorr)
plot_metric_cost(selection, "PearCorr", snakemake.output.pearcorr_flops)
plot_metric_cost(selection, "RelAcc", snakemake.output.relacc)
