"""Snakemake adapter: round 0's fine-tunes -> round 1's purchases of every budget (JSON)."""

from lensllm.curves.collect import read_job
from lensllm.logs import log_to
from lensllm.selection import SelectionSettings
from lensllm.selection.adaptive import plan_rounds, write_plans

log_to(snakemake.log[0])
settings = SelectionSettings(**snakemake.params.settings)
jobs = [read_job(path) for path in snakemake.input.round0]
round0 = {(job["model"], int(job["size"])): (float(job["test_loss"]), float(job["flops_measured"])) for job in jobs}
plans = plan_rounds(round0, snakemake.params.sizes, snakemake.params.budgets, snakemake.params.target,
                    settings.ats_k, settings.ats_delta, settings.adaptive())
write_plans(plans, snakemake.output[0])
