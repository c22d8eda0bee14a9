"""Snakemake adapter: loss table + runs table -> loss and Hessian trace vs D, AtS transitions marked."""

from lensllm.selection.evaluation import ats_transitions
from lensllm.curves.collect import read_runs
from lensllm.logs import log_to
from lensllm.curves.losstable import read_losstable
from lensllm.report.run import plot_hessian

log_to(snakemake.log[0])
table = read_losstable(snakemake.input.losses, snakemake.wildcards.benchmark)
transitions = ats_transitions(table, snakemake.params.ats_k, snakemake.params.ats_delta)
plot_hessian(table, read_runs(snakemake.input.runs), transitions, snakemake.output[0])
