"""Snakemake adapter: loss table + cost config -> analytic FLOPs of every (model, size) fine-tune."""

from lensllm.selection.evaluation import write_flops
from lensllm.curves.cost import CostModel, analytic_flops
from lensllm.logs import log_to
from lensllm.curves.losstable import read_losstable

log_to(snakemake.log[0])
table = read_losstable(snakemake.input[0], snakemake.wildcards.benchmark)
write_flops(analytic_flops(table.models, table.params, table.sizes, CostModel(**snakemake.params.cost)), snakemake.output[0])
