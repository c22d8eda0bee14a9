"""Snakemake adapter: job JSONs of one benchmark -> loss table, measured FLOPs, per-model facts, runs."""

from lensllm.analysis import write_flops, write_tsv
from lensllm.collect import collect_grid
from lensllm.logs import log_to
from lensllm.losstable import write_losstable

log_to(snakemake.log[0])
table, flops, facts, runs = collect_grid(snakemake.input, snakemake.wildcards.benchmark, snakemake.params.families)
write_losstable(table, snakemake.output.losses)
write_flops(flops, snakemake.output.flops)
write_tsv(facts, snakemake.output.facts)
write_tsv(runs, snakemake.output.runs)
