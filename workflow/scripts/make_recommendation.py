"""Snakemake adapter: the recommendations of every benchmark -> recommendation.tsv and recommendation.md."""

import pandas as pd

from lensllm.atomic import write_text, write_tsv
from lensllm.logs import log_to
from lensllm.selection.recommend import RECOMMENDATION_HEADER

log_to(snakemake.log[0])
write_tsv(pd.concat([pd.read_csv(p, sep="\t", dtype={"model": str}) for p in snakemake.input.tsv], ignore_index=True), snakemake.output.tsv)
write_text(snakemake.output.md, RECOMMENDATION_HEADER + "".join(open(p).read() for p in snakemake.input.md))
