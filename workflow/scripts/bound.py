"""Snakemake adapter: loss tables + runs tables -> the PAC-Bayes bound's terms along every curve
(rule tabulate_bound: bound.tsv, bound_correlation.tsv, bound.md; rule plot_bound: one figure)."""

import pandas as pd

from lensllm.atomic import write_text, write_tsv
from lensllm.curves.collect import read_runs
from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.probes.bound import bound_correlation, bound_terms, phase_crossover
from lensllm.report.bound import bound_markdown, plot_bound
from lensllm.selection.evaluation import ats_transitions


def terms_of(losses, runs, benchmark):
    table = read_losstable(losses, benchmark)
    transitions = ats_transitions(table, snakemake.params.ats_k, snakemake.params.ats_delta)
    return bound_terms(table, read_runs(runs), transitions)


log_to(snakemake.log[0])
if snakemake.rule == "plot_bound":
    plot_bound(terms_of(snakemake.input.losses, snakemake.input.runs, snakemake.wildcards.benchmark), snakemake.output[0])
else:
    terms = pd.concat([terms_of(losses, runs, benchmark) for losses, runs, benchmark
                       in zip(snakemake.input.losses, snakemake.input.runs, snakemake.params.benchmarks)], ignore_index=True)
    correlation = bound_correlation(terms)
    write_tsv(terms, snakemake.output.terms)
    write_tsv(correlation, snakemake.output.correlation)
    write_text(snakemake.output.md, bound_markdown(terms, correlation, phase_crossover(terms)))
