"""lensllm's test suite: unit/ (the package, no Snakemake run) and workflow/ (the Snakemake and make
command lines). A package, so that tests import their helpers as `from tests.helpers import ...`."""
