"""Snakemake adapter: loss table up to the budget + measured FLOPs -> the recommendation of one benchmark."""

from lensllm.atomic import write_text, write_tsv
from lensllm.curves.cost import read_energy, read_flops
from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.selection import SelectionSettings
from lensllm.selection.evaluation import terms_of_inputs
from lensllm.selection.recommend import read_coverage, recommend, recommendation_frame, recommendation_markdown
from lensllm.selection.uncertainty import UncertaintySettings
from lensllm.training.plan import plan_summary, read_plan

log_to(snakemake.log[0])
inputs, params = snakemake.input, snakemake.params
table = read_losstable(inputs.losses, snakemake.wildcards.benchmark)
terms = terms_of_inputs(inputs)
uncertainty = UncertaintySettings(**params.uncertainty)
# With select.flops_budget the budget is the plan's (the largest size the FLOPs budget affords).
plan = read_plan(inputs.plan) if hasattr(inputs, "plan") else None
recommendation = recommend(
    table,
    read_flops(inputs.flops),
    params.full_size,
    plan.budget if plan else params.budget,
    params.methods,
    params.pick_method,
    SelectionSettings(**params.settings),
    uncertainty,
    params.settle_p_best,
    read_coverage(inputs.coverage, uncertainty.level),
    terms,
    plan.flops_budget if plan else None,
    read_energy(inputs.flops),
)
write_tsv(recommendation_frame([recommendation]), snakemake.output.tsv)
markdown = recommendation_markdown([recommendation], title=False)
if plan:  # after the heading: which sizes the FLOPs budget bought
    heading, rest = markdown.split("\n\n", 1)
    markdown = f"{heading}\n\n{plan_summary(plan)}\n\n{rest}"
write_text(snakemake.output.md, markdown)
