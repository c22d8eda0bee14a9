"""Snakemake adapter: loss tables -> one ablation of Lin et al. (2024): AtS's k and delta, or the size constraint."""

from lensllm.atomic import write_tsv
from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.report.paper import AblationSettings, ablation_hyper, ablation_size
from lensllm.selection import SelectionSettings

log_to(snakemake.log[0])
tables = [read_losstable(p, b) for p, b in zip(snakemake.input, snakemake.params.benchmarks)]
run = {"hyper": ablation_hyper, "size": ablation_size}[snakemake.wildcards.ablation]
frame = run(
    tables,
    snakemake.params.target,
    snakemake.params.ratios,
    SelectionSettings(**snakemake.params.settings),
    AblationSettings.from_config(snakemake.params.ablation),
)
write_tsv(frame, snakemake.output[0])
