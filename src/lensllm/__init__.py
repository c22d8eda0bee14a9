"""lensllm: choose which pre-trained language model to fine-tune from small-data scaling laws.

The science lives in one module per concept: `losstable` (the data contract), `laws` (formulas),
`fitting` (fit a law to a curve), `selection` (one function per selector), `metrics`, `cost`,
`published` (the papers' curves), `ntk` (LensLLM's NTK term), `hessian` (Hutchinson's trace),
`spectra` (NLPmetrics) and `report` (tables and figures); the jobs around them are `corpora`,
`data`, `zoo`, `finetune`, `collect` and `analysis`.
"""

__version__ = "0.1.0"
