"""lensllm: choose which pre-trained language model to fine-tune from small-data scaling laws.

The science lives in one module per concept: `losstable` (the data contract), `laws` (formulas),
`fitting` (fit a law to a curve), `selection` (one function per selector), `metrics`, `cost`,
`published` (the papers' curves) and `report` (tables and figures).
"""

__version__ = "0.1.0"
