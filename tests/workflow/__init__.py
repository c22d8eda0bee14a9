"""Tests of the workflow through the Snakemake and make command lines (marked `workflow`)."""
