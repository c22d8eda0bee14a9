"""Snakemake adapter: loss table up to the budget + measured FLOPs (+ the last round's record, with rounds)
-> the recommendation of one benchmark."""

import dataclasses

from lensllm.atomic import write_text, write_tsv
from lensllm.curves.cost import read_energy, read_flops
from lensllm.curves.losstable import read_losstable
from lensllm.data.benchmark import read_benchmark
from lensllm.logs import log_to
from lensllm.selection import SelectionSettings
from lensllm.selection.evaluation import terms_of_inputs
from lensllm.selection.recommend import read_coverage, recommend, recommendation_frame, recommendation_markdown
from lensllm.selection.rounds import read_rounds, recommend_rounds, rounds_frame, rounds_markdown
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
# The rows of the user's file that were skipped (skip_bad_rows), said in the recommendation.
recommendation = dataclasses.replace(recommendation, skipped_rows=read_benchmark(inputs.data).skipped_rows)
if hasattr(inputs, "rounds"):  # rounds: the pick after the last round, round 0's forecasts beside it
    rounds = recommend_rounds(read_rounds(inputs.rounds), recommendation)
    write_tsv(rounds_frame([rounds]), snakemake.output.tsv)
    write_text(snakemake.output.md, rounds_markdown([rounds], title=False))
else:
    write_tsv(recommendation_frame([recommendation]), snakemake.output.tsv)
    markdown = recommendation_markdown([recommendation], title=False)
    if plan:  # after the heading: which sizes the FLOPs budget bought
        heading, rest = markdown.split("\n\n", 1)
        markdown = f"{heading}\n\n{plan_summary(plan)}\n\n{rest}"
    write_text(snakemake.output.md, markdown)
