"""Snakemake adapter: selections + loss table + FLOPs (and energy) -> PearCorr, RelAcc, FLOPs, energy
and prediction errors."""

from lensllm.atomic import write_tsv
from lensllm.curves.cost import read_energy, read_flops
from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.selection.evaluation import prediction_errors_by_model, read_selections, score_selections

log_to(snakemake.log[0])
table = read_losstable(snakemake.input.losses, snakemake.wildcards.benchmark)
selections = read_selections(snakemake.input.selections)
selection, prediction_error = score_selections(selections, table, read_flops(snakemake.input.flops),
                                              read_energy(snakemake.input.flops))
write_tsv(selection, snakemake.output.selection)
write_tsv(prediction_error, snakemake.output.prediction_error)
write_tsv(prediction_errors_by_model(selections, table), snakemake.output.by_model)
