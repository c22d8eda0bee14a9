"""What the workflow's rules need, without Snakemake: `config` (the checks at start that the config
schema cannot express, one `ConfigError` each, and the candidate models from the sheets), `options`
(the command-line options and settings the rules hand to the jobs), `layout` (the results directory,
the log paths, the files each job reads and the outputs of `rule all`) and `launch` (the Makefile's
resuming launcher of Snakemake)."""
