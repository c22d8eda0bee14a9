import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lensllm.selection.evaluation import run_selectors, score_selections
from lensllm.curves.cost import CostModel, analytic_flops
from lensllm.curves.losstable import LossTable, read_losstable
from lensllm.curves.terms import NtkTerm
from lensllm.probes.ntk import kernel_spectrum
from lensllm.selection import SELECTORS, ModelTerms, SelectionSettings, ats_fit, select
from lensllm.curves.terms import PowerLawFit, WeightMetrics

TARGET = 1_638_400
RATIOS = [8, 16, 32, 64, 128, 256, 512]
FLAN_COST = CostModel(tokens_per_example=35, epochs=20, runs_per_size=15)
METHODS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "methods.md"


@pytest.fixture(scope="module")
def reproduced(published_dir):
    frames = []
    for benchmark in ("flan", "gigaword"):
        table = read_losstable(published_dir / f"{benchmark}.csv")
        selections = run_selectors(table, ["AtS", "ZeroShot", "SubTuning", "ModelSize"], TARGET, RATIOS, SelectionSettings())
        frames.append(score_selections(selections, table, analytic_flops(table.models, table.params, table.sizes, FLAN_COST))[0])
    return pd.concat(frames)


def test_all_112_published_table1_values_are_reproduced(reproduced, reference_table1):
    reference = pd.read_csv(reference_table1, sep="\t")
    assert len(reference) == 112
    merged = reference.merge(reproduced, on=["benchmark", "method", "ratio", "metric"], suffixes=("_published", ""))
    assert len(merged) == 112
    worst = (merged["value_raw"] - merged["value_published"]).abs().max()
    assert worst <= 0.06, merged.loc[(merged["value_raw"] - merged["value_published"]).abs().idxmax()]


def _documented_selectors():
    """The selector names of the Selectors list of docs/methods.md: `Name`: or `Name` (...):."""
    text = METHODS_PAGE.read_text()
    block = text[text.index("- **Selectors**"):text.index("- **NTK term**")]
    return re.findall(r"`([A-Za-z-]+)`(?: \([^)]*\))?:", block)


def test_every_documented_selector_runs_and_gives_the_documented_verdict():
    """On three exact LensLLM-law curves (model b best at the target) with NTK terms and weight
    spectra: each selector docs/methods.md documents runs, scores every model in the documented
    direction, predicts the target loss if it fits a curve, and is charged the documented fine-tunes
    and model-term FLOPs; no selector is registered without being documented."""
    documented = _documented_selectors()
    assert len(documented) == 12 and set(SELECTORS) == set(documented)
    sizes, models, budget, target = (0, 16, 32, 64, 128, 256, 512), ("a", "b", "c"), 128, 512
    ntk, steps, weights = {}, {}, {}
    for i, model in enumerate(models):
        g = np.random.default_rng(i).normal(size=(6, 10))
        eigenvalues, projections = kernel_spectrum(g @ g.T, -np.ones(6))
        ntk[model] = NtkTerm(model, "toy", 1e-3, tuple(eigenvalues), tuple(projections), (-1.0,) * 6, 6, 0, 100, 100, "w",
                             flops=1e6, seconds=0.0)
        steps.update({(model, s): 3 * s // 16 for s in sizes})
        fit = PowerLawFit(3.0, 1.0, 0.1, 10, 10.0)
        weights[model] = WeightMetrics(model, 3.0 + i, 4.0 + i, (("layer", fit),), 1e5, 0.1)
    truth = {"a": (40.0, 0.5, 3.0), "b": (30.0, 0.45, 2.5), "c": (60.0, 0.55, 2.9)}
    losses = np.array([[b / (float(ntk[m].f(steps[(m, budget)])) + s**beta) + e for s in sizes]
                       for m, (b, beta, e) in truth.items()])
    table = LossTable("toy", models, sizes, losses, np.array([1e6, 2e6, 3e6]), ("x", "y", "z"))
    flops = {(m, s): 1e6 * (i + 1) * s for i, m in enumerate(models) for s in sizes}
    terms = ModelTerms(ntk, steps, weights, flops)
    train = set(table.train_sizes(budget))
    charged = {"ZeroShot": {0}, "SubTuning": {budget}, "ModelSize": set(), "NLPMetrics": set(), "VanillaFit": train,
               "RectifiedFit": {0} | train, "LensLLM": {0} | train, "LensLLM-NTK-fixed": {0} | train,
               "LensLLM-NTK-fitted": {0} | train}
    for name in documented:
        selection = select(name, table, budget, target, terms=terms)
        assert (selection.method, selection.budget, selection.target, selection.models) == (name, budget, target, models)
        assert len(selection.scores) == 3 and np.all(np.isfinite(selection.scores))
        assert selection.higher_is_better == (name == "ModelSize")
        if name in ("ZeroShot", "SubTuning", "ModelSize", "NLPMetrics"):
            assert selection.predictions is None
        else:  # a predicted target loss, close enough to pick the best model
            assert selection.predictions == selection.scores and selection.selected() == "b"
            np.testing.assert_allclose(selection.predictions, table.column(target), rtol=0.1)
        needed = {s for _, s in selection.finetunes}
        if name == "AtS":
            assert {32, 64, 128} <= needed <= train  # the k = 3 largest, and those tested below them
        elif name == "Adaptive":  # round 0 (every size <= budget / 2), then sizes up to 2 x budget
            assert {16, 32, 64} <= needed <= {16, 32, 64, 128, 256}
        elif name == "Race":  # round 0 (sizes <= budget / 2, at least k + 1, within the cap), then doublings
            assert {32, 64} <= needed <= {16, 32, 64, 128, 256}
        else:
            assert needed == charged[name]
        model_terms = {"LensLLM-NTK-fixed": 3e6, "LensLLM-NTK-fitted": 3e6, "NLPMetrics": 3e5}.get(name, 0.0)
        assert selection.extra_flops == pytest.approx(model_terms)


def test_each_method_is_charged_for_exactly_the_finetunes_it_needed(published_dir):
    table = read_losstable(published_dir / "flan.csv")
    budget = TARGET // 64  # 25600: training sizes 200 ... 25600
    assert select("ModelSize", table, budget, TARGET).finetunes == ()
    assert {s for _, s in select("ZeroShot", table, budget, TARGET).finetunes} == {0}
    assert {s for _, s in select("SubTuning", table, budget, TARGET).finetunes} == {budget}
    assert {s for _, s in select("RectifiedFit", table, budget, TARGET).finetunes} == {0, *table.train_sizes(budget)}
    assert {s for _, s in select("VanillaFit", table, budget, TARGET).finetunes} == set(table.train_sizes(budget))
    ats = select("AtS", table, budget, TARGET)
    for model in table.models:
        walk = ats_fit(table.train_sizes(budget), table.curve(model, table.train_sizes(budget)))
        charged = sorted(s for m, s in ats.finetunes if m == model)
        assert charged == sorted(walk.tested)
        assert min(charged) >= 400  # the smallest size is never needed by AtS on these curves


def test_ats_walks_down_until_a_point_deviates():
    sizes = [200, 400, 800, 1600, 3200, 6400, 12800]
    # A straight power law from 800 up, a flat pre-power phase below it.
    losses = [4.0, 3.99] + [3.0 * (s / 800) ** -0.2 for s in sizes[2:]]
    walk = ats_fit(sizes, losses, k=3, delta=5)
    assert walk.transition == 800
    assert walk.tested == (400, 800, 1600, 3200, 6400, 12800)
    assert walk.slope == pytest.approx(-0.2)


def test_ats_never_accepts_the_smallest_size():
    sizes = [200, 400, 800, 1600, 3200]
    walk = ats_fit(sizes, [5.0 * s**-0.1 for s in sizes])
    assert walk.accepted == (400, 800, 1600, 3200) and 200 not in walk.tested


@pytest.mark.parametrize("jitter", [0.0, 1e-15, -1e-15, 3e-14])
def test_ats_on_an_exact_line_accepts_every_size_but_the_smallest_whatever_the_rounding(jitter):
    # Residuals of an exact line are float noise (about 1e-16) and their sign and size depend on
    # the CPU and BLAS; jitter of that order must not change the walk.
    sizes = [200, 400, 800, 1600, 3200, 6400]
    losses = [5.0 * s**-0.1 * (1 + jitter * (-1) ** i) for i, s in enumerate(sizes)]
    walk = ats_fit(sizes, losses)
    assert walk.accepted == (400, 800, 1600, 3200, 6400)
    assert walk.slope == pytest.approx(-0.1, abs=1e-9)


def test_ats_on_a_constant_curve_accepts_every_size_but_the_smallest():
    sizes = [200, 400, 800, 1600, 3200]
    walk = ats_fit(sizes, [2.5] * len(sizes))
    assert walk.accepted == (400, 800, 1600, 3200)
    assert walk.slope == pytest.approx(0.0, abs=1e-12)
    assert walk.predict(1_638_400) == pytest.approx(2.5)


def test_ats_stops_at_one_outlier_below_an_exact_line():
    sizes = [200, 400, 800, 1600, 3200, 6400]
    losses = [5.0 * s**-0.1 for s in sizes]
    losses[2] *= 1.01  # one point 1% above the line: far outside delta x the noise floor
    walk = ats_fit(sizes, losses)
    assert walk.accepted == (1600, 3200, 6400)
    assert walk.tested == (800, 1600, 3200, 6400)


def test_unfittable_model_is_left_out_with_a_warning_and_still_scored(caplog):
    sizes = (0, 200, 400, 800, 1600)
    losses = np.array([[3.0, 2.9, 2.8, 2.6, 2.4], [3.5, 3.0, 2.7, 2.5, 2.3], [4.0, 3.9, 3.7, 3.4, 3.0]])
    losses[2, 2] = np.nan  # a file cannot carry this (read_losstable refuses it); a caller can
    table = LossTable("toy", ("a", "b", "c"), sizes, losses, np.array([1e6, 2e6, 3e6]), ("x", "x", "x"))
    with caplog.at_level(logging.WARNING):
        selection = select("RectifiedFit", table, 800, 1600)
    assert selection.models == ("a", "b")
    assert selection.excluded[0][0] == "c"
    assert "RectifiedFit at budget 800: c left out" in caplog.text
    scores, errors = score_selections([selection], table, analytic_flops(table.models, table.params, sizes, FLAN_COST))
    assert list(scores["metric"]) == ["PearCorr", "RelAcc"]
    assert errors["n_excluded"].tolist() == [1]


def test_unknown_method_and_bad_budget_are_named(published_dir):
    table = read_losstable(published_dir / "flan.csv")
    with pytest.raises(KeyError, match="unknown selection method 'Oracle'"):
        select("Oracle", table, 25600, TARGET)
    with pytest.raises(ValueError, match="budget 1000 is not a training size"):
        select("AtS", table, 1000, TARGET)


@pytest.mark.parametrize("method", ["AtS", "ZeroShot", "SubTuning", "ModelSize", "RectifiedFit", "VanillaFit", "LensLLM"])
def test_no_selector_reads_a_column_above_its_budget(published_dir, method):
    """Every column above the budget replaced by random losses (the target column included):
    the scores and the fine-tunes charged stay exactly the same."""
    table = read_losstable(published_dir / "flan.csv")
    budget = TARGET // 64
    above = np.array(table.sizes) > budget
    corrupted = table.losses.copy()
    corrupted[:, above] = np.random.default_rng(0).uniform(0.5, 5.0, size=(len(table.models), above.sum()))
    leaked = LossTable(table.benchmark, table.models, table.sizes, corrupted, table.params, table.families)
    clean, dirty = select(method, table, budget, TARGET), select(method, leaked, budget, TARGET)
    assert (clean.models, clean.scores, clean.finetunes) == (dirty.models, dirty.scores, dirty.finetunes)
