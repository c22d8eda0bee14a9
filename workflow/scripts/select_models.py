"""Snakemake adapter: loss table (+ model terms on our grid) -> every selector at every budget (JSON)."""

from lensllm.analysis import run_selectors, terms_of_inputs, write_selections
from lensllm.logs import log_to
from lensllm.losstable import read_losstable
from lensllm.selection import SelectionSettings

log_to(snakemake.log[0])
table = read_losstable(snakemake.input.losses, snakemake.wildcards.benchmark)
terms = terms_of_inputs(snakemake.input)
selections = run_selectors(
    table,
    snakemake.params.methods,
    snakemake.params.target,
    snakemake.params.ratios,
    SelectionSettings(**snakemake.params.settings),
    terms,
)
write_selections(selections, snakemake.output[0])
