"""Snakemake adapter: NTK and weight-metric JSONs -> ntk.tsv and weight_metrics.tsv."""

import pandas as pd

from lensllm import ntk, spectra
from lensllm.analysis import write_tsv
from lensllm.logs import log_to

log_to(snakemake.log[0])
write_tsv(pd.DataFrame([ntk.summary(ntk.read_ntk(p)) for p in snakemake.input.ntk]), snakemake.output.ntk)
weights = [spectra.summary(spectra.read_weight_metrics(p)) for p in snakemake.input.weights]
write_tsv(pd.DataFrame(weights), snakemake.output.weights)
