"""Snakemake adapter: selection.tsv -> one of the paper's selection tables (Table 1 or 2) as TSV, Markdown, LaTeX."""

import pandas as pd

from lensllm.atomic import write_text, write_tsv
from lensllm.logs import log_to
from lensllm.report.paper import paper_table, table_latex, table_markdown

TITLES = {
    "table1": "Table 1: PearCorr and RelAcc (x100) of the model selectors (Lin et al. 2024)",
    "table2": "Table 2: the selectors built on each law (x100): AtS, the rectified law fitted (RectifiedFit, "
    "the paper's OurFit) and the vanilla law fitted (VanillaFit)",
}

log_to(snakemake.log[0])
table = paper_table(pd.read_csv(snakemake.input[0], sep="\t"), snakemake.params.methods, snakemake.params.target)
write_tsv(table, snakemake.output.tsv)
write_text(snakemake.output.md, table_markdown(table, TITLES[snakemake.wildcards.table]))
write_text(snakemake.output.tex, table_latex(table))
