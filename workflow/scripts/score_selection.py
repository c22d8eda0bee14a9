"""Snakemake adapter: selections + loss table + FLOPs (and energy) -> PearCorr, RelAcc, FLOPs, energy
and prediction errors."""

from lensllm.selection.evaluation import (
    prediction_errors_by_model,
    read_energy,
    read_flops,
    read_selections,
    score_selections,
    write_tsv,
)
from lensllm.logs import log_to
from lensllm.curves.losstable import read_losstable

log_to(snakemake.log[0])
table = read_losstable(snakemake.input.losses, snakemake.wildcards.benchmark)
selections = read_selections(snakemake.input.selections)
selection, prediction_error = score_selections(selections, table, read_flops(snakemake.input.flops),
                                              read_energy(snakemake.input.flops))
write_tsv(selection, snakemake.output.selection)
write_tsv(prediction_error, snakemake.output.prediction_error)
write_tsv(prediction_errors_by_model(selections, table), snakemake.output.by_model)
