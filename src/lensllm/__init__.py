"""lensllm: choose which pre-trained language model to fine-tune from small-data scaling laws.

A subpackage per concept, imports running one way (downward), the analysing half free of torch:

- `curves`: the loss table (the data contract), the laws and their fitting, published curves, metrics, FLOPs and energy.
- `selection`: the selector registry and AtS, the other selectors, Adaptive's rounds, uncertainty, recommendation, evaluation.
- `report`: the run's and the paper's tables (Markdown, LaTeX) and figures, through one figure helper.
- `training`: job settings, model loading, tokens and FLOPs, the fine-tuning loop, device, resources, plan, zoo.
- `probes`: the models' own terms: NTK, Hessian trace, weight spectra, and the PAC-Bayes bound.
- `data`: the benchmark format, the offline builders and corpora, hub and user files.
- `pipeline`: what the Snakemake rules need: launch, config checks, option builders, the results layout.

Beside them, `atomic` (atomic writes of text, TSV and JSON) and `logs` (a job's log file).
"""

__version__ = "0.1.0"
