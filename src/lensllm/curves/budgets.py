"""Data budgets: the evaluation's ratio r stands for the budget D = target // r (r must divide the target)."""

from __future__ import annotations

from typing import Sequence


def budget_of(target: int, ratio: int) -> int:
    """The data budget target // ratio; a ratio that does not divide the target is an error."""
    if ratio <= 0 or target % ratio:
        raise ValueError(f"ratio {ratio} does not divide the target size {target}")
    return target // ratio


def budgets_for(target: int, ratios: Sequence[int]) -> dict[int, int]:
    """Map each ratio to its data budget target // ratio, in the order of `ratios`."""
    return {ratio: budget_of(target, ratio) for ratio in ratios}
