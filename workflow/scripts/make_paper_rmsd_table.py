"""Snakemake adapter: fits.tsv + loss tables -> Table 3 (RMSD of the rectified and vanilla laws per model)."""

import pandas as pd

from lensllm.atomic import write_text, write_tsv
from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.report.paper import rmsd_latex, rmsd_markdown, rmsd_table

log_to(snakemake.log[0])
tables = [read_losstable(p, b) for p, b in zip(snakemake.input.losses, snakemake.params.benchmarks)]
rmsd = rmsd_table(pd.read_csv(snakemake.input.fits, sep="\t"), tables)
write_tsv(rmsd, snakemake.output.tsv)
write_text(snakemake.output.md, rmsd_markdown(rmsd))
write_text(snakemake.output.tex, rmsd_latex(rmsd))
