# lensllm: `make run` runs the main job, `make test` the test suite; both install what is missing first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CORES  ?= 2
# Offline stand-in for the download of the published curves: a directory holding <benchmark>.csv.
CURVES_DIR ?= $(wildcard ../shared/data/published)

.PHONY: install run paper test lint format bench clean

install: $(STAMP)

# torch is installed first and pinned, so that no later requirement can pull another build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: paper

paper: $(STAMP)
	$(PY) -m snakemake --cores $(CORES) --configfile config/paper.yaml \
	  $(if $(CURVES_DIR),--config curves_dir=$(abspath $(CURVES_DIR)) 'benchmarks=["flan","gigaword"]')
	$(PY) -m snakemake --cores $(CORES) --configfile config/paper.yaml \
	  $(if $(CURVES_DIR),--config curves_dir=$(abspath $(CURVES_DIR)) 'benchmarks=["flan","gigaword"]') \
	  --report results/paper/report.html

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m snakemake --lint --configfile config/paper.yaml
	$(VENV)/bin/snakefmt --check Snakefile rules

format: $(STAMP)
	$(VENV)/bin/snakefmt Snakefile rules

bench: $(STAMP)
	$(PY) benchmarks/paper_run.py

clean:
	rm -rf results .snakemake
