"""Snakemake adapter: loss tables and fine-tuning FLOPs -> race.tsv and race.md (Race against AtS, cell by cell)."""

import pandas as pd

from lensllm.atomic import write_text, write_tsv
from lensllm.curves.cost import read_flops
from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.report.race import race_cells, race_markdown
from lensllm.selection import SelectionSettings

log_to(snakemake.log[0])
settings = SelectionSettings(**snakemake.params.settings)
cells = pd.concat(
    [
        race_cells(read_losstable(losses, benchmark), read_flops(flops), snakemake.params.target,
                   snakemake.params.ratios, settings)
        for benchmark, losses, flops in zip(snakemake.params.benchmarks, snakemake.input.losses, snakemake.input.flops)
    ],
    ignore_index=True,
)
write_tsv(cells, snakemake.output.tsv)
write_text(snakemake.output.md, race_markdown(cells))
