"""How hard a loss table makes the choice: do the cheap rankings mislead, and do the leading curves cross?

A grid on which the zero-shot loss, or a fine-tune on a small budget, already names the model that is
best at the target size gives a selector nothing to win. Per benchmark, with L_m(D) the test loss of
model m after fine-tuning on D examples and T the target size:

- the zero-shot best  argmin_m L_m(0), the early best  argmin_m L_m(T/8) (SubTuning's pick at
  budget T/8) and the target best  argmin_m L_m(T);
- ZeroShot PearCorr = 100 r(L(0), L(T)), Pearson's r over the candidates (lensllm.curves.metrics);
- near ties: the candidates other than the best whose target loss is within `tie` of the best,
  L_m(T) <= (1 + tie) min_m L_m(T).

The zero-shot ranking misleads when the zero-shot best is not the target best; the curves cross late
when the early best is not the target best.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from lensllm.curves.losstable import LossTable, read_losstable
from lensllm.curves.metrics import pearcorr

EARLY_RATIO = 8  # the early size is target / 8, the papers' middle budget
TIE = 0.02  # near ties: within 2% of the best target loss


@dataclass(frozen=True)
class Difficulty:
    """The difficulty of one benchmark's loss table (see the module docstring)."""

    benchmark: str
    target: int
    early: int
    zero_shot_best: str
    early_best: str
    target_best: str
    zero_shot_pearcorr: float
    near_ties: tuple[str, ...]

    @property
    def zero_shot_misleads(self) -> bool:
        """The zero-shot best is not the best at the target."""
        return self.zero_shot_best != self.target_best

    @property
    def crosses_late(self) -> bool:
        """The best at target / 8 is not the best at the target."""
        return self.early_best != self.target_best


def difficulty(table: LossTable, target: int | None = None, tie: float = TIE) -> Difficulty:
    """The difficulty of `table` at `target` (default: its largest size); early = the largest size <= target / 8."""
    target = target or max(table.sizes)
    early_sizes = [s for s in table.train_sizes() if s <= target // EARLY_RATIO]
    if not early_sizes:
        raise ValueError(f"{table.benchmark}: no fine-tuned size at or below target / {EARLY_RATIO} = {target // EARLY_RATIO}")
    early = max(early_sizes)
    final = table.column(target)
    best = int(np.argmin(final))
    ties = tuple(m for i, m in enumerate(table.models) if i != best and final[i] <= (1 + tie) * final[best])
    return Difficulty(
        benchmark=table.benchmark,
        target=target,
        early=early,
        zero_shot_best=table.models[int(np.argmin(table.column(0)))],
        early_best=table.models[int(np.argmin(table.column(early)))],
        target_best=table.models[best],
        zero_shot_pearcorr=pearcorr(table.column(0), final),
        near_ties=ties,
    )


def difficulty_markdown(rows: Sequence[Difficulty], tie: float = TIE) -> str:
    """One row per benchmark: the three bests, ZeroShot PearCorr and the near ties."""
    lines = [
        f"| Benchmark | Zero-shot best | Best at target/{EARLY_RATIO} | Best at target | ZeroShot PearCorr | Within {tie:.0%} of the best |",
        "|---|---|---|---|---:|---|",
    ]
    for d in rows:
        lines.append(
            f"| {d.benchmark} | {_marked(d.zero_shot_best, d.zero_shot_misleads)} | {_marked(d.early_best, d.crosses_late)} ({d.early})"
            f" | {d.target_best} ({d.target}) | {d.zero_shot_pearcorr:.1f} | {', '.join(d.near_ties) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def _marked(model: str, not_the_best: bool) -> str:
    return f"{model} (not the best)" if not_the_best else model


def difficulty_frame(rows: Sequence[Difficulty]) -> pd.DataFrame:
    """The rows as a table, one per benchmark (the near ties joined by commas)."""
    return pd.DataFrame(
        [{**asdict(d), "near_ties": ",".join(d.near_ties), "zero_shot_misleads": d.zero_shot_misleads,
          "crosses_late": d.crosses_late} for d in rows]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lensllm.curves.difficulty", description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="+", help="loss tables (.tsv or .csv), one per benchmark")
    parser.add_argument("--target", type=int, help="target size (default: each table's largest)")
    args = parser.parse_args(argv)
    sys.stdout.write(difficulty_markdown([difficulty(read_losstable(p), args.target) for p in args.tables]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
