"""Snakemake adapter: one round of select mode's rounds on one benchmark -> its record (JSON).

Round 0 reads the fine-tunes of every candidate up to select.budget (and the benchmark's header, for
its number of training examples); round r reads round r-1's record and the fine-tunes it bought.
"""

import json
import logging

from lensllm.curves.collect import read_job
from lensllm.logs import log_to
from lensllm.selection import RaceSettings
from lensllm.selection.rounds import continue_rounds, read_rounds, start_rounds, write_rounds

log_to(snakemake.log[0])
inputs, race = snakemake.input, snakemake.params.race
jobs = [read_job(path) for path in inputs.jobs]
if int(snakemake.wildcards.round) == 0:
    with open(inputs.benchmark, encoding="utf-8") as f:
        train_examples = json.loads(f.readline())["counts"]["train"]
    record = start_rounds(snakemake.wildcards.benchmark, snakemake.params.models, jobs, race["budget"],
                          race["full_size"], race["ladder"], race["flops_budget"], race["benchmarks"], race["k"],
                          race["delta"], RaceSettings(**race["settings"]), train_examples)
else:
    record = continue_rounds(read_rounds(inputs.previous), jobs)
logging.info(f"round {record.last.index}: bought {list(record.last.bought)}; pick {record.last.pick.model} "
             f"(P(best) {record.last.pick.p_best:.3f}); next {list(record.last.next)}; {record.last.stopped or 'goes on'}")
write_rounds(record, snakemake.output[0])
