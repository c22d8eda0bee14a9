"""Snakemake adapter: loss table + cost config -> analytic FLOPs of every (model, size) fine-tune."""

from lensllm.curves.cost import CostModel, analytic_flops, write_flops
from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to

log_to(snakemake.log[0])
table = read_losstable(snakemake.input[0], snakemake.wildcards.benchmark)
write_flops(analytic_flops(table.models, table.params, table.sizes, CostModel(**snakemake.params.cost)), snakemake.output[0])
