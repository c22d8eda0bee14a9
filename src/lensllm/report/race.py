"""race.md: what Race bought and what it won, cell by cell, against AtS at the same budget.

Per benchmark and data budget b = target / ratio: the RelAcc of Race's pick, its regret in nats
(the pick's true loss at the target minus the best true loss), Race's FLOPs over AtS's, the rounds it
ran after round 0, the pick's P(best), and whether the true best was still a contender in the last
round. Then the calibration of P(best): of the picks made with P(best) >= 0.8, the share that were
the true best.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from lensllm.curves.budgets import budgets_for
from lensllm.curves.losstable import LossTable
from lensllm.curves.metrics import relacc
from lensllm.report.tables import number
from lensllm.selection import SelectionSettings, run_selector
from lensllm.selection.race import race_on_table

RACE_COLUMNS = ["benchmark", "ratio", "budget", "pick", "true_best", "relacc", "regret_nats", "flops_race",
                "flops_ats", "flops_ratio", "rounds", "p_best", "best_in_last_round"]
CONFIDENT = 0.8


def race_cells(table: LossTable, flops: Mapping[tuple[str, int], float], target: int, ratios: Sequence[int],
               settings: SelectionSettings) -> pd.DataFrame:
    """One row per budget of `table`: Race's pick against the truth at `target`, and its FLOPs against AtS's."""
    truth = dict(zip(table.models, table.column(target)))
    best = min(truth, key=truth.get)
    rows = []
    for ratio, budget in budgets_for(target, ratios).items():
        rounds, bought = race_on_table(table, budget, target, flops, settings.ats_k, settings.ats_delta, settings.race())
        ats = run_selector("AtS", table, [budget], target, settings)[0]
        spent, ats_flops = sum(flops[f] for f in bought), sum(flops[f] for f in ats.finetunes if f[1] > 0)
        pick = rounds[-1].pick
        rows.append([table.benchmark, ratio, budget, pick.model, best,
                     relacc(truth[pick.model], list(truth.values())),
                     truth[pick.model] - truth[best], spent, ats_flops, spent / ats_flops, len(rounds) - 1,
                     pick.p_best, best in rounds[-1].contenders])
    return pd.DataFrame(rows, columns=RACE_COLUMNS)


def race_markdown(frame: pd.DataFrame) -> str:
    """The cells, a summary per benchmark, and the calibration of P(best)."""
    lines = ["# Race against AtS, cell by cell", "",
             "RelAcc (x100) and regret (nats: the pick's true loss at the target minus the best's) of Race's pick; "
             "FLOPs / AtS's at the same budget; rounds after round 0; the pick's P(best); whether the true best "
             "was still a contender in the last round.", "",
             "| benchmark | 1/ratio | budget | pick | RelAcc | regret | FLOPs / AtS | rounds | P(best) | best in last round |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in frame.itertuples():
        lines.append(f"| {row.benchmark} | 1/{row.ratio} | {row.budget:,} | {row.pick} | {row.relacc:.1f} | "
                     f"{row.regret_nats:.4f} | {row.flops_ratio:.2f} | {row.rounds} | {row.p_best:.2f} | "
                     f"{'yes' if row.best_in_last_round else 'no'} |")
    lines += ["", "| benchmark | mean RelAcc | worst RelAcc | mean regret | largest FLOPs / AtS |", "|---|---|---|---|---|"]
    for name, cells in [*frame.groupby("benchmark", sort=False), ("all", frame)]:
        lines.append(f"| {name} | {cells['relacc'].mean():.1f} | {cells['relacc'].min():.1f} | "
                     f"{cells['regret_nats'].mean():.4f} | {cells['flops_ratio'].max():.2f} |")
    sure = frame[frame["p_best"] >= CONFIDENT]
    correct = (sure["pick"] == sure["true_best"]).mean() if len(sure) else np.nan
    lines += ["", f"P(best) calibration: {len(sure)} of {len(frame)} picks were made with P(best) >= {CONFIDENT}; "
              f"{number(100 * correct, '.0f')}% of them were the true best (the target is >= {100 * CONFIDENT:.0f}%). "
              f"Over all cells the mean P(best) of the pick was {frame['p_best'].mean():.2f} and "
              f"{100 * (frame['pick'] == frame['true_best']).mean():.0f}% of the picks were the true best.", ""]
    return "\n".join(lines)
