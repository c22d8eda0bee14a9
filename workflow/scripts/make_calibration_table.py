"""Snakemake adapter: per-benchmark calibration tables -> calibration.tsv, calibration.md and coverage.tsv
(the mean coverage of each method over the budgets)."""

import pandas as pd

from lensllm.atomic import write_text, write_tsv
from lensllm.logs import log_to
from lensllm.selection.uncertainty import CALIBRATION_COLUMNS, calibration_markdown, coverage_summary

log_to(snakemake.log[0])
frames = [pd.read_csv(p, sep="\t") for p in snakemake.input]
frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CALIBRATION_COLUMNS)
write_tsv(frame, snakemake.output.tsv)
write_text(snakemake.output.md, calibration_markdown(frame))
write_tsv(coverage_summary(frame), snakemake.output.coverage)
