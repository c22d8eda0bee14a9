"""Snakemake adapter: loss table (+ model terms on our grid) -> every selector at every budget (JSON).

On our grid Adaptive ran its own rounds (rules/adaptive.smk): its selections are read, not recomputed.
"""

from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.selection import SelectionSettings
from lensllm.selection.evaluation import read_selections, run_selectors, terms_of_inputs, write_selections

log_to(snakemake.log[0])
table = read_losstable(snakemake.input.losses, snakemake.wildcards.benchmark)
terms = terms_of_inputs(snakemake.input)
methods = snakemake.params.methods
rounds = read_selections(snakemake.input.adaptive) if hasattr(snakemake.input, "adaptive") else []
selections = run_selectors(
    table,
    [m for m in methods if not (rounds and m == "Adaptive")],
    snakemake.params.target,
    snakemake.params.ratios,
    SelectionSettings(**snakemake.params.settings),
    terms,
)
selections = sorted([*selections, *rounds], key=lambda s: methods.index(s.method))
write_selections(selections, snakemake.output[0])
