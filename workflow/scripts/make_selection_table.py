"""Snakemake adapter: per-benchmark scores -> selection.tsv/.md/.tex and the prediction-error tables
(with the LensLLM paper's per-model RMSE table)."""

import pandas as pd

from lensllm.atomic import write_text, write_tsv
from lensllm.logs import log_to
from lensllm.report.run import prediction_markdown, rmse_by_model, write_selection_tables


def gather(paths):
    return pd.concat([pd.read_csv(p, sep="\t") for p in paths], ignore_index=True)


log_to(snakemake.log[0])
selection = gather(snakemake.input.selection)
write_tsv(selection, snakemake.output.tsv)
write_selection_tables(selection, snakemake.output.md, snakemake.output.tex)
errors, by_model = gather(snakemake.input.prediction_error), gather(snakemake.input.by_model)
write_tsv(errors, snakemake.output.prediction_error)
write_tsv(by_model, snakemake.output.by_model)
write_text(snakemake.output.prediction_md, prediction_markdown(errors, by_model))
write_tsv(rmse_by_model(by_model), snakemake.output.rmse_by_model)
