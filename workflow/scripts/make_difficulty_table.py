"""Snakemake adapter: the loss tables -> difficulty.tsv/.md, whether the zero-shot and small-budget
rankings name the best model at the target (lensllm.curves.difficulty)."""

from lensllm.atomic import write_text, write_tsv
from lensllm.curves.difficulty import difficulty, difficulty_frame, difficulty_markdown
from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to

log_to(snakemake.log[0])
rows = [difficulty(read_losstable(path), snakemake.params.target) for path in snakemake.input]
write_tsv(difficulty_frame(rows), snakemake.output.tsv)
write_text(snakemake.output.md, difficulty_markdown(rows))
