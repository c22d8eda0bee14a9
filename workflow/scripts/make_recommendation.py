"""Snakemake adapter: the recommendations of every benchmark -> recommendation.tsv and recommendation.md."""

import pandas as pd

from lensllm.atomic import write_text, write_tsv
from lensllm.logs import log_to
from lensllm.selection.recommend import RECOMMENDATION_HEADER
from lensllm.selection.rounds import rounds_total_markdown

log_to(snakemake.log[0])
frame = pd.concat([pd.read_csv(p, sep="\t", dtype={"model": str}) for p in snakemake.input.tsv], ignore_index=True)
write_tsv(frame, snakemake.output.tsv)
# With rounds on several benchmarks: what they spent together, against the FLOPs budget (a total).
total = rounds_total_markdown(frame, snakemake.params.flops_budget) if "round" in frame.columns else ""
write_text(snakemake.output.md, RECOMMENDATION_HEADER + total + "".join(open(p).read() for p in snakemake.input.md))
