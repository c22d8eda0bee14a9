"""Snakemake adapter: job JSONs of one benchmark -> loss table, measured FLOPs, per-model facts, runs."""

from lensllm.atomic import write_tsv
from lensllm.curves.collect import collect_grid, energy_of
from lensllm.curves.cost import write_flops
from lensllm.curves.losstable import restrict_params, write_losstable
from lensllm.logs import log_to

log_to(snakemake.log[0])
table, flops, facts, runs = collect_grid(snakemake.input, snakemake.wildcards.benchmark, snakemake.params.families)
# The size constraint (config key max_params) filters the candidates of the loss table only: every
# step downstream sees the restricted set, the fine-tunes and their facts stay as run.
write_losstable(restrict_params(table, snakemake.config.get("max_params")), snakemake.output.losses)
write_flops(flops, snakemake.output.flops, energy_of(runs))
write_tsv(facts, snakemake.output.facts)
write_tsv(runs, snakemake.output.runs)
