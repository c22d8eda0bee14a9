"""Snakemake adapter: round 0 + the sizes round 1 bought -> Adaptive's selection at every budget."""

from lensllm.curves.collect import read_job
from lensllm.logs import log_to
from lensllm.selection import SelectionSettings
from lensllm.selection.adaptive import first_round_sizes, read_plans, selection_of
from lensllm.selection.evaluation import write_selections

log_to(snakemake.log[0])
settings = SelectionSettings(**snakemake.params.settings)
knobs = settings.adaptive()
losses = {}
for path in [*snakemake.input.round0, *snakemake.input.bought]:
    job = read_job(path)
    losses[(job["model"], int(job["size"]))] = float(job["test_loss"])
selections = []
for plan in read_plans(snakemake.input.plan):
    first = first_round_sizes(snakemake.params.sizes, plan.budget, knobs)
    owned = {m: {s: losses[(m, s)] for s in first} for m in snakemake.params.models}
    for model, size in plan.buys:
        owned[model][size] = losses[(model, size)]
    selections.append(selection_of(owned, snakemake.params.models, plan.budget, snakemake.params.target,
                                   settings.ats_k, settings.ats_delta, knobs))
write_selections(selections, snakemake.output[0])
