"""Adaptive: its compute never exceeds AtS's, it reads nothing it did not buy, and its grid rounds
(round 0 -> plan -> round 1, as the Snakemake jobs run them) give the selector's own answer."""

import numpy as np
import pytest

from lensllm.selection.adaptive import (
    AdaptiveSettings,
    LibraryPrior,
    Shop,
    compute_of,
    estimated_flops,
    first_round_sizes,
    ladder,
    plan_round,
    plan_rounds,
    read_plans,
    selection_of,
    write_plans,
)
from lensllm.curves.cost import CostModel, analytic_flops, selection_flops
from lensllm.curves.losstable import LossTable, read_losstable
from lensllm.selection import ModelTerms, SelectionSettings, run_selector

TARGET = 1_638_400
RATIOS = [8, 16, 32, 64, 128, 256, 512]
TOKENS = {"flan": 35, "gigaword": 44}
SETTINGS = SelectionSettings(adaptive_contention=1.0)


def published(published_dir, benchmark):
    table = read_losstable(published_dir / f"{benchmark}.csv")
    return table, analytic_flops(table.models, table.params, table.sizes, CostModel(TOKENS[benchmark], 20, 15))


@pytest.mark.parametrize("benchmark", ["flan", "gigaword"])
def test_adaptive_is_charged_no_more_than_ats_in_any_cell(published_dir, benchmark):
    table, flops = published(published_dir, benchmark)
    budgets = [TARGET // r for r in RATIOS]
    ats = run_selector("AtS", table, budgets, TARGET, SETTINGS)
    adaptive = run_selector("Adaptive", table, budgets, TARGET, SETTINGS, ModelTerms(flops=flops))
    for a, d in zip(ats, adaptive):
        assert selection_flops(d.finetunes, flops) <= selection_flops(a.finetunes, flops)
        # it does spend: more than round 0 alone, and some model reaches past the budget
        assert max(s for _, s in d.finetunes) > d.budget


@pytest.mark.parametrize("benchmark", ["flan", "gigaword"])
def test_adaptive_reads_no_column_above_its_reach(published_dir, benchmark):
    """Every column above reach x budget (the target included) randomised: the same selections."""
    table, flops = published(published_dir, benchmark)
    rng = np.random.default_rng(0)
    for ratio in (8, 512):
        budget = TARGET // ratio
        losses = np.array(table.losses)
        above = [j for j, s in enumerate(table.sizes) if s > 2 * budget]
        losses[:, above] = rng.uniform(0.5, 9.0, size=(len(table.models), len(above)))
        corrupted = LossTable(table.benchmark, table.models, table.sizes, losses, np.array(table.params), table.families)
        clean = run_selector("Adaptive", table, [budget], TARGET, SETTINGS, ModelTerms(flops=flops))[0]
        dirty = run_selector("Adaptive", corrupted, [budget], TARGET, SETTINGS, ModelTerms(flops=flops))[0]
        assert dirty == clean


def test_the_shop_refuses_sizes_beyond_its_limit_and_the_target(published_dir):
    table, _ = published(published_dir, "flan")
    shop = Shop(table, limit=6400, target=TARGET)
    shop.buy(table.models[0], 6400)
    with pytest.raises(RuntimeError, match="may not read .* at size 12800"):
        shop.buy(table.models[0], 12800)
    with pytest.raises(RuntimeError, match="at size 1638400"):
        Shop(table, limit=TARGET, target=TARGET).buy(table.models[0], TARGET)
    assert shop.finetunes == ((table.models[0], 6400),)


@pytest.mark.parametrize("benchmark", ["flan", "gigaword"])
def test_the_grid_rounds_give_the_selectors_answer(published_dir, benchmark, tmp_path):
    """Round 0 as job results -> plans (through their JSON) -> round 1 = the selector on the table."""
    table, flops = published(published_dir, benchmark)
    budgets = [TARGET // r for r in RATIOS]
    knobs = SETTINGS.adaptive()
    first = {s for b in budgets for s in first_round_sizes(table.sizes, b, knobs)}
    round0 = {(m, s): (float(table.curve(m, (s,))[0]), flops[(m, s)]) for m in table.models for s in first}
    write_plans(plan_rounds(round0, table.sizes, budgets, TARGET, 3, 5.0, knobs), tmp_path / "plan.json")
    expected = run_selector("Adaptive", table, budgets, TARGET, SETTINGS, ModelTerms(flops=flops))
    for plan, want in zip(read_plans(tmp_path / "plan.json"), expected):
        owned = {m: {s: table.curve(m, (s,))[0] for s in first_round_sizes(table.sizes, plan.budget, knobs)} for m in table.models}
        for m, s in plan.buys:
            owned[m][s] = table.curve(m, (s,))[0]
        assert plan.spent <= plan.compute
        assert selection_of(owned, table.models, plan.budget, TARGET, 3, 5.0, knobs) == want


def test_compute_is_the_k_plus_1_largest_sizes_of_every_model():
    flops = {(m, s): f * s for m, f in (("a", 1.0), ("b", 10.0)) for s in (2, 4, 8, 16, 32)}
    assert compute_of(["a", "b"], [0, 2, 4, 8, 16, 32], 16, flops, k=2) == (1 + 10) * (4 + 8 + 16)
    # AtS never tests the smallest size: with k + 1 sizes it tests the k largest only
    assert compute_of(["a", "b"], [0, 2, 4, 8, 16, 32], 8, flops, k=2) == (1 + 10) * (4 + 8)
    assert first_round_sizes([0, 2, 4, 8, 16, 32], 16, AdaptiveSettings()) == (2, 4, 8)
    assert first_round_sizes([0, 2, 4, 8, 16, 32], 4, AdaptiveSettings()) == (2, 4)  # at least two
    assert ladder([0, 2, 4, 8, 16, 32, 64], 16, 64, AdaptiveSettings()) == (16, 32)


def test_estimated_flops_scale_the_largest_measured_size():
    measured = {("a", 2): 20.0, ("a", 4): 44.0, ("b", 2): 5.0}
    estimate = estimated_flops(measured, [0, 2, 4, 8])
    assert estimate[("a", 4)] == 44.0 and estimate[("a", 8)] == 88.0
    assert estimate[("b", 8)] == 20.0


def test_the_cheaper_model_reaches_further_for_the_same_forecast_gain():
    """Two identical power-law curves, one model 8x the cost: round 1 buys the cheap one's sizes first."""
    sizes = [0, 2, 4, 8, 16, 32, 64, 128]
    curve = {s: 3.0 * s ** -0.3 for s in sizes if s}
    owned = {m: {s: curve[s] * (1 + 0.01 * np.sin(s)) for s in (2, 4, 8)} for m in ("cheap", "dear")}
    flops = {(m, s): (1.0 if m == "cheap" else 8.0) * s for m in owned for s in sizes if s}
    plan = plan_round(owned, sizes, 16, 128, flops, 3, 5.0, AdaptiveSettings())
    assert plan.spent <= plan.compute
    bought = dict.fromkeys(owned, 0)
    for m, s in plan.buys:
        bought[m] = max(bought[m], s)
    assert bought["cheap"] == 32 > bought["dear"]


def test_the_prior_never_learns_from_the_benchmark_it_evaluates(published_dir):
    table, flops = published(published_dir, "flan")
    other, _ = published(published_dir, "gigaword")
    with_prior = SelectionSettings(adaptive_contention=1.0, adaptive_prior=True)
    with pytest.raises(ValueError, match="flan: Adaptive's prior may not learn from the benchmark it evaluates"):
        run_selector("Adaptive", table, [6400], TARGET, with_prior, ModelTerms(flops=flops, library=(other, table)))
    # the prior moves the forecasts (it is used) ...
    plain = run_selector("Adaptive", table, [6400], TARGET, SETTINGS, ModelTerms(flops=flops))[0]
    moved = run_selector("Adaptive", table, [6400], TARGET, with_prior, ModelTerms(flops=flops, library=(other,)))[0]
    assert moved.predictions != plain.predictions
    # ... and a library whose extrapolations were exact (power laws) teaches it nothing
    sizes = other.sizes
    exact = np.array([[3.0 * max(s, 1) ** -(0.1 + 0.01 * i) for s in sizes] for i in range(len(other.models))])
    power = LossTable("power", other.models, sizes, exact, np.array(other.params), other.families)
    assert LibraryPrior.learn((power,), 3, 5.0).weight(256) == pytest.approx(0.0, abs=1e-9)
    unmoved = run_selector("Adaptive", table, [6400], TARGET, with_prior, ModelTerms(flops=flops, library=(power,)))[0]
    assert unmoved.predictions == pytest.approx(plain.predictions, rel=1e-9)
