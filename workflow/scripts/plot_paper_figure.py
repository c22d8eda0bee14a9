"""Snakemake adapter: the run's tables -> one figure of Lin et al. (2024) as PNG and PDF."""

import pandas as pd

from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.report import paper_figures
from lensllm.report.run_figures import plot_metric_cost

log_to(snakemake.log[0])
figure, paths = snakemake.wildcards.figure, [snakemake.output.png, snakemake.output.pdf]
if figure in ("difficulty", "zero_shot_lines"):
    tables = [read_losstable(p, b) for p, b in zip(snakemake.input.losses, snakemake.params.benchmarks)]
    if figure == "difficulty":
        paper_figures.plot_difficulty(tables, snakemake.params.target, snakemake.params.ratio, paths)
    else:
        paper_figures.plot_zero_shot_lines(tables, paths)
elif figure == "pearcorr_vs_flops":
    selection = pd.read_csv(snakemake.input.selection, sep="\t")
    selection = selection[selection["method"].isin(snakemake.params.methods)]
    plot_metric_cost(selection, "PearCorr", paths)
else:
    table = pd.read_csv(snakemake.input.table, sep="\t")
    plot = {"rmsd_scatter": paper_figures.plot_rmsd_scatter, "ablation_hyper": paper_figures.plot_ablation_heatmap,
            "ablation_size": paper_figures.plot_ablation_bars}[figure]
    plot(table, paths)
