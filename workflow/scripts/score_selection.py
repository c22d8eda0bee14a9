"""Snakemake adapter: selections + loss table -> PearCorr, RelAcc, FLOPs and prediction RMSE."""

from lensllm.analysis import read_selections, score_selections, write_tsv
from lensllm.cost import CostModel
from lensllm.logs import log_to
from lensllm.losstable import read_losstable

log_to(snakemake.log[0])
table = read_losstable(snakemake.input.losses, snakemake.wildcards.benchmark)
selection, prediction_error = score_selections(
    read_selections(snakemake.input.selections), table, CostModel(**snakemake.params.cost)
)
write_tsv(selection, snakemake.output.selection)
write_tsv(prediction_error, snakemake.output.prediction_error)
