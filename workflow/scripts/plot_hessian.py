"""Snakemake adapter: loss table + runs table -> loss and Hessian trace vs D, AtS transitions marked."""

from lensllm.curves.collect import read_runs
from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.report.run_figures import plot_hessian
from lensllm.selection.evaluation import ats_transitions

log_to(snakemake.log[0])
table = read_losstable(snakemake.input.losses, snakemake.wildcards.benchmark)
transitions = ats_transitions(table, snakemake.params.ats_k, snakemake.params.ats_delta)
plot_hessian(table, read_runs(snakemake.input.runs), transitions, snakemake.output[0])
