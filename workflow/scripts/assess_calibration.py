"""Snakemake adapter: loss table (+ model terms on our grid) -> coverage and log score of each
predicting method's intervals at every budget (TSV)."""

from lensllm.atomic import write_tsv
from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.selection import SelectionSettings
from lensllm.selection.evaluation import terms_of_inputs
from lensllm.selection.uncertainty import UncertaintySettings, calibration

log_to(snakemake.log[0])
table = read_losstable(snakemake.input.losses, snakemake.wildcards.benchmark)
terms = terms_of_inputs(snakemake.input)
uncertainty = UncertaintySettings(**snakemake.params.uncertainty)
frame = calibration(
    table,
    snakemake.params.methods,
    snakemake.params.target,
    snakemake.params.ratios,
    SelectionSettings(**snakemake.params.settings),
    uncertainty.level,
    terms,
    uncertainty,
)
write_tsv(frame, snakemake.output[0])
