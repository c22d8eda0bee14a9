# Shared definitions: where results go, the benchmarks and candidate models, wildcard constraints,
# and the checks the schemas cannot express (all at start, before any job runs). The checks, the
# option builders and the results layout live in lensllm.pipeline (unit-tested without Snakemake);
# this file keeps what needs Snakemake's objects: config, workflow, wildcards.

import functools
import os
import re
import sys
from pathlib import Path

# The package from this checkout's source tree, so that Snakemake's own interpreter imports the
# same lensllm as the jobs (and needs it installed only for its dependencies).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from lensllm.data.builders import OFFLINE_BENCHMARKS as OFFLINE_CORPORA
from lensllm.pipeline import layout
from lensllm.pipeline.config import (
    ConfigError,
    candidate_models,
    check_job_python,
    check_published,
    check_user_data,
    fetched_sources,
    flops_budget,
    grid_sizes,
    measures_bound,
    offline_benchmarks,
)

RESULTS = layout.results_dir(config)
# The software environment of every rule (used with --sdm conda). It installs lensllm from
# ${LENSLLM_ROOT}, which pip expands from the environment conda is started with: this checkout.
ENV = "../environment.yml"
os.environ.update(LENSLLM_ROOT=workflow.basedir)
BENCHMARKS = list(config["benchmarks"])
PUBLISHED = config["source"] == "published"
# Select mode: recommend a model for data of size select.full_size, fine-tuning up to the budget only.
SELECT = config.get("mode", "evaluate") == "select"
# Select mode with select.flops_budget (total fine-tuning FLOPs per benchmark, every candidate
# together): every size of 'sizes' is a candidate and the checkpoint plan_selection chooses the budget.
FLOPS_BUDGET = flops_budget(config)
FLOPS_PLAN = FLOPS_BUDGET is not None
# Benchmarks loaded with datasets.load_dataset from a hub id or a directory, and the user's own
# files; the others are built from the offline sources (lensllm.data.builders).
HUB_BENCHMARKS = config.get("hub_benchmarks", {})
USER_DATA = config.get("user_data", {})
OFFLINE_BENCHMARKS = offline_benchmarks(config)
# The zoo is pre-trained on every offline corpus, without the test split of any offline benchmark,
# whichever benchmarks the run fine-tunes on: the same sheet gives the same models in every run.
ZOO_CORPORA = list(OFFLINE_CORPORA)


def conda_jobs():
    """Whether the jobs run in conda environments (--sdm conda), not with the `python` on PATH."""
    from snakemake_interface_executor_plugins.settings import DeploymentMethod

    return DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method


# The checks at start (lensllm.pipeline.config), in order; the first failure stops the run with
# its message, which names the key, the sheet, the row or the model at fault.
try:
    if PUBLISHED:
        check_published(config)
    else:
        SIZES = grid_sizes(config)
        ALL_SIZES = [0, *SIZES]
        if not conda_jobs():
            check_job_python()
        check_user_data(config, RESULTS, SIZES, conda=conda_jobs())
    # Candidate models: name -> {path, family, zoo, pad_token, gguf_file, revision}.
    MODELS = {} if PUBLISHED else candidate_models(config, RESULTS, workflow.basedir)
except ConfigError as err:
    raise ValueError(str(err)) from None

# The raw sources to fetch: those of the offline benchmarks, and every corpus when there is a zoo.
FETCHED_SOURCES = fetched_sources(config, MODELS)
# The PAC-Bayes bound along the grid's curves (rules/bound.smk), when the jobs measure it.
BOUND = measures_bound(config)
# The log file of one job: log_path(rule_name, name="{benchmark}").
log_path = functools.partial(layout.log_path, RESULTS)


def model_directory(wildcards):
    """What loading a model needs first: the zoo model's directory, a hub model's download record
    (rule download_models); external directories and packages need nothing."""
    return layout.model_directory(RESULTS, wildcards.model, MODELS[wildcards.model])


# The selectors that spend by each fine-tune's FLOPs.
FLOPS_SPENDERS = {"Adaptive", "Race"}


def model_terms(wildcards):
    """On our grid: each model's NTK term and weight spectra, and the optimizer steps of each run;
    in every mode the FLOPs of each fine-tune, when Adaptive or Race spends by them."""
    return layout.model_term_inputs(
        RESULTS,
        wildcards.benchmark,
        MODELS,
        published=PUBLISHED,
        spends_flops=bool(FLOPS_SPENDERS & set(config.get("methods", []))),
    )


wildcard_constraints:
    benchmark="|".join(dict.fromkeys([*BENCHMARKS, *ZOO_CORPORA])),
    size=r"\d+",
    model="|".join(re.escape(m) for m in MODELS) or "[A-Za-z0-9_.-]+",
