"""Snakemake adapter: loss table up to the budget -> the figure of each candidate's forecast out to N."""

from lensllm.curves.losstable import read_losstable
from lensllm.logs import log_to
from lensllm.report.run_figures import plot_recommendation
from lensllm.selection import SelectionSettings
from lensllm.selection.evaluation import terms_of_inputs
from lensllm.selection.rounds import read_rounds
from lensllm.selection.uncertainty import UncertaintySettings
from lensllm.training.plan import read_plan

log_to(snakemake.log[0])
inputs, params = snakemake.input, snakemake.params
table = read_losstable(inputs.losses, snakemake.wildcards.benchmark)
terms = terms_of_inputs(inputs)
# With select.flops_budget the budget is the plan's (the largest size the FLOPs budget affords).
budget = read_plan(inputs.plan).budget if hasattr(inputs, "plan") else params.budget
# With rounds: each round's fine-tunes and every candidate's forecast at N after the last round.
rounds = read_rounds(inputs.rounds) if hasattr(inputs, "rounds") else None
plot_recommendation(table, params.full_size, budget, params.pick_method, snakemake.output[0],
                    SelectionSettings(**params.settings), UncertaintySettings(**params.uncertainty), terms,
                    rounds=rounds)
