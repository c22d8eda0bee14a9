"""Race (lensllm.selection.race): rounds inside the FLOPs cap, contenders that only shrink, no cell
read above what a round bought, the pick by expected loss, P(best) with a shared error."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lensllm.curves.losstable import LossTable
from lensllm.selection import RaceSettings, SelectionSettings, run_selector
from lensllm.selection.adaptive import compute_of
from lensllm.selection.uncertainty import Forecast
from lensllm.selection.race import Calibration, p_best_shared, race_on_table, race_round, rank

TARGET = 204800
SIZES = (0, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 102400, TARGET)


def crossing_table(seed: int = 0) -> LossTable:
    """Twelve models whose power laws cross: some start low and flatten, others start high and keep
    falling; sizes and parameter counts differ, so FLOPs differ."""
    rng = np.random.default_rng(seed)
    models, rows, params = [], [], []
    for i in range(12):
        start, slope, floor = rng.uniform(2.5, 4.0), rng.uniform(0.05, 0.3), rng.uniform(0.8, 1.5)
        d = np.array(SIZES, dtype=float)
        curve = floor + start * (1 + d / 100.0) ** -slope
        rows.append(curve * np.exp(rng.normal(0, 0.003, len(d))))
        models.append(f"m{i:02d}")
        params.append(float(rng.choice([1e8, 3e8, 1e9, 3e9])))
    return LossTable("toy", tuple(models), SIZES, np.array(rows), np.array(params), ("f",) * 12)


def flops_of(table: LossTable) -> dict[tuple[str, int], float]:
    return {(m, s): 6.0 * p * 40 * s for m, p in zip(table.models, table.params) for s in table.sizes if s > 0}


SETTINGS = RaceSettings(first=2, contenders=3, margin=0.2, reach=8)


@pytest.mark.parametrize("budget", [1600, 3200, 6400, 12800])
def test_rounds_never_exceed_the_cap_and_ats_flops(budget):
    table = crossing_table()
    flops = flops_of(table)
    rounds, bought = race_on_table(table, budget, TARGET, flops, 3, 5.0, SETTINGS)
    cap = compute_of(table.models, table.sizes, budget, flops, 3)
    spent = sum(flops[b] for b in bought)
    assert spent == pytest.approx(rounds[-1].spent) and spent <= cap * (1 + 1e-12)
    ats = run_selector("AtS", table, [budget], TARGET, SelectionSettings())[0]
    assert spent <= sum(flops[f] for f in ats.finetunes if f[1] > 0)
    assert len(rounds) >= 2 or budget == 1600, "a race on this table extends some contender"
    assert all(s <= SETTINGS.reach * budget for _, s in bought)


def test_a_contender_dropped_is_never_fine_tuned_again():
    table = crossing_table(3)
    rounds, _ = race_on_table(table, 6400, TARGET, flops_of(table), 3, 5.0,
                              dataclasses.replace(SETTINGS, contenders=4, margin=0.05))
    for before, after in zip(rounds, rounds[1:]):
        assert set(after.contenders) <= set(before.contenders)
        assert {m for m, _ in after.bought} <= set(before.contenders)
        assert after.bought == before.next
    dropped = [m for r, later in zip(rounds, rounds[1:]) for m in set(r.contenders) - set(later.contenders)]
    assert dropped, "the margin drops some contender on this table"


def test_no_cell_above_what_the_rounds_bought_is_read():
    table = crossing_table(2)
    flops = flops_of(table)
    rounds, bought = race_on_table(table, 3200, TARGET, flops, 3, 5.0, SETTINGS)
    rng = np.random.default_rng(7)
    scrambled = table.losses.copy()
    for i, m in enumerate(table.models):
        for j, s in enumerate(table.sizes):
            if (m, s) not in bought:
                scrambled[i, j] = rng.uniform(0.5, 5.0)  # the target column included
    other = LossTable(table.benchmark, table.models, table.sizes, scrambled, table.params, table.families)
    again, bought_again = race_on_table(other, 3200, TARGET, flops, 3, 5.0, SETTINGS)
    assert bought_again == bought and again == rounds


def test_the_pick_is_the_lowest_expected_loss_not_the_lowest_median_nor_the_likeliest_best():
    # B's median is lower and B is more often the best, but its forecast is wide: E[L_B] > E[L_A].
    ranked = rank(["A", "B", "C"], [800, 800, 800], [math.log(1.00), math.log(0.99), math.log(1.2)],
                  [0.02, 0.6, 0.02], shared=0.0)
    by = {f.model: f for f in ranked}
    assert ranked[0].model == "A"
    assert by["B"].median < by["A"].median and by["B"].p_best > by["A"].p_best
    assert by["A"].expected == pytest.approx(math.exp(0.02**2 / 2))
    assert by["B"].expected == pytest.approx(0.99 * math.exp(0.6**2 / 2)) and by["B"].expected > by["A"].expected


def test_p_best_with_a_shared_error():
    mu, sigma = [0.0, 0.01, 0.5], [0.1, 0.1, 0.1]
    independent, shared = p_best_shared(mu, sigma, 0.0), p_best_shared(mu, sigma, 0.9)
    assert independent.sum() == pytest.approx(1) and shared.sum() == pytest.approx(1)
    # no shared error: the independent models' P(best) of lensllm.selection.uncertainty
    forecast = Forecast("AtS", 1, 2, ("a", "b", "c"), tuple(np.exp(mu)), tuple(sigma))
    np.testing.assert_allclose(independent, forecast.p_best(), atol=1e-4)
    # a shared error moves every forecast together: with equal sigmas only the own errors can
    # reorder the models, so the lead's chance grows
    assert shared[0] > independent[0] + 0.05 and shared[2] < independent[2]


def test_a_round_stops_settled_at_max_rounds_or_when_nothing_fits():
    owned = {"a": {100: 2.0, 200: 1.9, 400: 1.8}, "b": {100: 3.0, 200: 2.9, 400: 2.8}}
    cost = {(m, s): float(s) for m in owned for s in owned[m]}
    calm = Calibration(0.0, 0.05, 4)
    ladder = [100, 200, 400, 800, 1600]
    base = RaceSettings(first=1, contenders=2, margin=1.0, reach=4, max_rounds=3, settle_p_best=0.0)
    going = race_round(0, owned, cost, list(cost), ladder, 400, 10**6, 1e9, 3, 5.0, calm, base)
    assert going.stopped == "" and going.next == (("a", 800), ("b", 800))
    settled = race_round(0, owned, cost, list(cost), ladder, 400, 10**6, 1e9, 3, 5.0, calm,
                         dataclasses.replace(base, settle_p_best=0.8))
    assert settled.stopped.startswith("settled") and settled.next == ()
    assert race_round(3, owned, cost, [], ladder, 400, 10**6, 1e9, 3, 5.0, calm, base).stopped.startswith("max_rounds")
    spent = sum(cost.values())
    poor = race_round(0, owned, cost, list(cost), ladder, 400, 10**6, spent + 100, 3, 5.0, calm, base)
    assert poor.stopped.startswith("budget spent") and poor.next == ()


def test_without_a_reach_only_the_cap_and_the_target_stop_a_contender():
    owned = {"a": {100: 2.0, 200: 1.9, 400: 1.8}, "b": {100: 3.0, 200: 2.9, 400: 2.8}}
    cost = {(m, s): float(s) for m in owned for s in owned[m]}
    calm = Calibration(0.0, 0.05, 4)
    ladder = [100, 200, 400, 800, 1600]
    free = RaceSettings(first=1, contenders=2, margin=1.0, reach=None, max_rounds=3)
    assert free.reach is None and SelectionSettings().race().reach is None  # the default: no reach
    # budget 100: 800 is past 4 x b, which a reach of 4 forbids and no reach allows
    assert race_round(0, owned, cost, list(cost), ladder, 100, 10**6, 1e9, 3, 5.0, calm, free).next == (("a", 800), ("b", 800))
    reach4 = race_round(0, owned, cost, list(cost), ladder, 100, 10**6, 1e9, 3, 5.0, calm,
                        dataclasses.replace(free, reach=4))
    assert reach4.next == () and reach4.stopped.startswith("no larger size") and reach4.stopped.endswith("within the reach")
    # the target is never bought, however much the cap allows
    at_target = race_round(0, owned, cost, list(cost), ladder, 100, 800, 1e9, 3, 5.0, calm, free)
    assert at_target.next == () and at_target.stopped == (
        "no larger size: every contender is fine-tuned at the largest size below the target")
