"""Selectors and what is built on them: the registry and AtS, the other selectors, Adaptive's rounds,
forecast uncertainty, the recommendation and the evaluation against the full-data truth.

Importing the package registers every selector (`ats`, `selectors`, `adaptive`, `race`); its public names
are re-exported here.
"""

from lensllm.selection.registry import (
    METHODS,
    MODEL_TERM_SELECTORS,
    SELECTORS,
    AdaptiveSettings,
    RaceSettings,
    ModelTerms,
    Selection,
    SelectionSettings,
    curve_selectors,
    run_selector,
    select,
)
from lensllm.selection.ats import AtsFit, ats_fit  # noqa: E402  (registers AtS)
from lensllm.selection import adaptive, race, selectors  # noqa: E402, F401  (register the others)

__all__ = ["METHODS", "MODEL_TERM_SELECTORS", "SELECTORS", "AdaptiveSettings", "AtsFit", "RaceSettings", "ModelTerms", "Selection",
           "SelectionSettings", "ats_fit", "curve_selectors", "run_selector", "select"]
