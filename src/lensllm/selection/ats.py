"""AtS, "Accept then Stop" (Lin et al., 2024): a straight line in log-log space, walked down from the budget.

A line log L = intercept + slope * log D is fitted by ordinary least squares on the k largest
training sizes; then the next smaller size is tested: if its absolute residual divided by the
standard deviation (ddof 0) of the in-sample residuals exceeds delta, stop; else accept it and refit.
The final line predicts the target loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lensllm.selection.registry import Selection, selector


@dataclass(frozen=True)
class AtsFit:
    """AtS's final line log L = intercept + slope * log D, and the sizes it looked at."""

    slope: float
    intercept: float
    accepted: tuple[int, ...]
    tested: tuple[int, ...]

    def predict(self, sizes) -> np.ndarray:
        """exp(intercept) * D^slope."""
        return np.exp(self.intercept + self.slope * np.log(np.asarray(sizes, dtype=float)))

    @property
    def transition(self) -> int:
        """The smallest size accepted into the power phase."""
        return self.accepted[0]



ATS_NOISE = 1e-9


def ats_fit(sizes: Sequence[int], losses: Sequence[float], k: int = 3, delta: float = 5.0) -> AtsFit:
    """Lin et al.'s Accept-then-Stop walk over one curve's training sizes (ascending).

    With x = log D and y = log L, a line is fitted by least squares to the k largest sizes; the next
    smaller size is accepted when |y - line| <= delta * max(std(in-sample residuals), noise), with
    noise = ATS_NOISE * max(1, max |y|), and the line is refitted. The noise floor gives a defined
    answer when the accepted points are collinear to float precision (an exact power law, a constant
    curve): a point is then accepted iff it lies on the line to within delta * noise. The smallest
    size is never accepted.
    """
    x, y = np.log(np.asarray(sizes, dtype=float)), np.log(np.asarray(losses, dtype=float))
    if len(x) < 2:
        raise ValueError(f"AtS needs at least two training sizes, got {list(sizes)}")
    noise = ATS_NOISE * max(1.0, float(np.max(np.abs(y))))
    first = max(len(x) - k, 0)
    tested = list(sizes[first:])
    while True:
        slope, intercept = np.polyfit(x[first:], y[first:], 1)
        if first <= 1:  # the smallest size is never accepted
            break
        candidate = first - 1
        tested.insert(0, sizes[candidate])
        spread = max(float(np.std(y[first:] - (intercept + slope * x[first:]))), noise)
        deviation = abs(y[candidate] - (intercept + slope * x[candidate]))
        if deviation > delta * spread:
            break
        first = candidate
    return AtsFit(float(slope), float(intercept), tuple(int(s) for s in sizes[first:]), tuple(int(s) for s in tested))


@selector("AtS")
def accept_then_stop(table, budgets, target, settings, terms):
    selections = []
    for budget in budgets:
        sizes = table.train_sizes(budget)
        fits = [ats_fit(sizes, table.curve(m, sizes), settings.ats_k, settings.ats_delta) for m in table.models]
        predictions = tuple(float(f.predict(target)) for f in fits)
        finetunes = tuple((m, s) for m, f in zip(table.models, fits) for s in f.tested)
        selections.append(Selection("AtS", budget, target, table.models, predictions, False, finetunes, predictions))
    return selections

