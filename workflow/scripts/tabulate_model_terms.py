"""Snakemake adapter: NTK and weight-metric JSONs -> ntk.tsv and weight_metrics.tsv."""

import pandas as pd

from lensllm.atomic import write_tsv
from lensllm.curves.terms import ntk_summary, read_ntk, read_weight_metrics, weights_summary
from lensllm.logs import log_to

log_to(snakemake.log[0])
write_tsv(pd.DataFrame([ntk_summary(read_ntk(p)) for p in snakemake.input.ntk]), snakemake.output.ntk)
weights = [weights_summary(read_weight_metrics(p)) for p in snakemake.input.weights]
write_tsv(pd.DataFrame(weights), snakemake.output.weights)
