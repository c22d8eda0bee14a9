"""Snakemake adapter: loss table -> every selector at every budget (selections JSON)."""

from lensllm.analysis import run_selectors, write_selections
from lensllm.logs import log_to
from lensllm.losstable import read_losstable
from lensllm.selection import SelectionSettings

log_to(snakemake.log[0])
table = read_losstable(snakemake.input[0], snakemake.wildcards.benchmark)
selections = run_selectors(
    table,
    snakemake.params.methods,
    snakemake.params.target,
    snakemake.params.ratios,
    SelectionSettings(**snakemake.params.settings),
)
write_selections(selections, snakemake.output[0])
