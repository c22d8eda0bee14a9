"""Predictive intervals, P(best) and their calibration (lensllm.selection.uncertainty)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from lensllm.curves.losstable import LossTable, read_losstable
from lensllm.curves.terms import NtkTerm
from lensllm.probes.ntk import kernel_spectrum
from lensllm.selection import ModelTerms, SelectionSettings
from lensllm.selection.uncertainty import (
    CALIBRATION_COLUMNS,
    Forecast,
    UncertaintySettings,
    calibration,
    calibration_markdown,
    curvature,
    forecast,
    truncate,
)

TARGET = 1638400
RATIOS = [8, 16, 32, 64, 128, 256, 512]


def make(median, sigma, models=None):
    models = models or tuple(f"m{i}" for i in range(len(median)))
    return Forecast("AtS", 100, 1000, tuple(models), tuple(median), tuple(sigma))


def test_interval_is_the_central_interval_of_the_log_normal():
    f = make([2.0, 3.0], [0.1, 0.3])
    for level in (0.5, 0.8, 0.95):
        low, high = f.interval(level)
        z = norm.ppf(0.5 + level / 2)
        np.testing.assert_allclose(low, np.exp(np.log([2.0, 3.0]) - z * np.array([0.1, 0.3])))
        np.testing.assert_allclose(high, np.exp(np.log([2.0, 3.0]) + z * np.array([0.1, 0.3])))
        np.testing.assert_allclose(norm.cdf(np.log(high), np.log([2.0, 3.0]), [0.1, 0.3])
                                   - norm.cdf(np.log(low), np.log([2.0, 3.0]), [0.1, 0.3]), level)
    assert list(f.covers([2.0, 10.0])) == [True, False]


def test_log_score_is_the_log_normal_density():
    f = make([2.0, 3.0], [0.1, 0.3])
    truth = np.array([2.1, 2.5])
    expected = norm.logpdf(np.log(truth), np.log([2.0, 3.0]), [0.1, 0.3]) - np.log(truth)
    np.testing.assert_allclose(f.log_score(truth), expected)


def test_p_best_far_apart_identical_and_two_normals():
    far = make([1.0, 5.0, 9.0], [0.05, 0.05, 0.05]).p_best()
    np.testing.assert_allclose(far, [1.0, 0.0, 0.0], atol=1e-9)
    same = make([2.0] * 4, [0.2] * 4).p_best()
    np.testing.assert_allclose(same, 0.25, rtol=1e-12)
    # Two normals: P(X0 < X1) = Phi((mu1 - mu0) / sqrt(s0^2 + s1^2)).
    two = make([2.0, 2.2], [0.1, 0.15]).p_best()
    np.testing.assert_allclose(two[0], norm.cdf(np.log(1.1) / np.hypot(0.1, 0.15)), atol=1e-6)
    mixed = make([2.0, 2.1, 1.9, 2.5, 2.05], [0.1, 0.3, 0.02, 0.5, 0.2])
    p = mixed.p_best()
    assert p.sum() == pytest.approx(1.0, abs=1e-12) and np.all(p >= 0)
    np.testing.assert_array_equal(p, mixed.p_best())  # deterministic
    draws = np.random.default_rng(0).normal(np.log(mixed.median), mixed.sigma, size=(200_000, 5))
    np.testing.assert_allclose(p, np.bincount(draws.argmin(axis=1), minlength=5) / len(draws), atol=0.01)


def test_forecast_rejects_bad_values():
    with pytest.raises(ValueError, match="sigma"):
        make([2.0], [0.0])
    with pytest.raises(ValueError, match="level"):
        make([2.0], [0.1]).interval(1.0)
    with pytest.raises(ValueError, match="level"):
        UncertaintySettings(level=1.5)


@pytest.fixture(scope="module")
def tables(published_dir):
    return {b: read_losstable(published_dir / f"{b}.csv") for b in ("flan", "gigaword")}


def test_forecast_uses_nothing_above_the_budget(tables):
    table, budget = tables["flan"], TARGET // 64
    above = np.array([s > budget for s in table.sizes])
    corrupted = np.array(table.losses)
    corrupted[:, above] *= np.random.default_rng(1).uniform(0.2, 5.0, size=corrupted[:, above].shape)
    other = LossTable(table.benchmark, table.models, table.sizes, corrupted, np.array(table.params), table.families)
    for method in ("AtS", "LensLLM"):
        a, b = forecast(method, table, [budget], TARGET)[0], forecast(method, other, [budget], TARGET)[0]
        assert a == b
        # select mode: no column above the budget, and a target that is no column at all
        c = forecast(method, truncate(table, budget), [budget], 3_000_000)[0]
        assert c.models == a.models and c.target == 3_000_000 and all(m > 0 for m in c.median)


def test_forecast_keeps_the_exclusions_of_the_fit():
    sizes = (0, 100, 200, 400, 800, 1600)
    rng = np.random.default_rng(0)
    losses = np.array([3.0 * np.power(np.maximum(sizes, 1), -0.1) * rng.lognormal(0, 0.01, len(sizes)) for _ in range(4)])
    table = LossTable("toy", ("a", "b", "c", "d"), sizes, losses, np.ones(4), ("x",) * 4)
    f = forecast("AtS", table, [1600], 12800)[0]
    assert f.models == table.models and f.excluded == () and f.n_backtest == 12
    # a budget with a single training size below it leaves no backtest: every model is excluded
    f = forecast("AtS", table, [200], 12800)[0]
    assert f.models == () and [m for m, _ in f.excluded] == list(table.models)


def test_curvature_of_a_parabola_in_log_log():
    sizes = (0, 100, 200, 400, 800, 1600, 3200)
    x = np.log(np.maximum(sizes, 1))
    losses = np.exp(1.0 - 0.2 * x - 0.03 * x**2)[None, :]
    table = LossTable("toy", ("a",), sizes, losses, np.ones(1), ("x",))
    assert curvature(table, 3200)["a"] == pytest.approx(-0.06)
    assert curvature(table, 200)["a"] == 0.0  # fewer than three training sizes


def ntk_term(model, seed):
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(8, 20))
    eigenvalues, projections = kernel_spectrum(g @ g.T, -rng.uniform(2, 5, size=8))
    return NtkTerm(model, "toy", 1e-3, tuple(eigenvalues), tuple(projections), tuple(-rng.uniform(2, 5, size=8)),
                   8, 0, 1000, 1000, "w", flops=1e9, seconds=1.0)


def test_calibration_on_a_grid_shaped_table_with_model_terms():
    """The evaluation grid: sizes 16 ... 512, target 512, ratios 2, 4, 8, NTK selectors included."""
    sizes, models = (0, 16, 32, 64, 128, 256, 512), ("a", "b", "c", "d")
    rng = np.random.default_rng(3)
    losses = np.array([(30 + 10 * i) / (5 + np.power(sizes, 0.5)) + 2.5 for i in range(4)]) * rng.lognormal(0, 0.01, (4, 7))
    table = LossTable("toy", models, sizes, losses, np.ones(4), ("x",) * 4)
    terms = ModelTerms({m: ntk_term(m, i) for i, m in enumerate(models)}, {(m, s): max(1, s // 16) for m in models for s in sizes}, {})
    frame = calibration(table, ["AtS", "LensLLM", "LensLLM-NTK-fixed"], 512, [2, 4, 8], SelectionSettings(), 0.8, terms)
    assert list(frame.columns) == CALIBRATION_COLUMNS and len(frame) == 9
    assert set(frame["budget"]) == {256, 128, 64}
    assert (frame["n_models"] == 4).all() and frame["coverage"].between(0, 1).all()


@pytest.fixture(scope="module")
def published_calibration(tables):
    return {b: calibration(t, ["AtS"], TARGET, RATIOS, SelectionSettings()) for b, t in tables.items()}


@pytest.mark.parametrize("benchmark", ["flan", "gigaword"])
def test_ats_intervals_are_calibrated_on_the_published_curves(published_calibration, benchmark):
    """Issue 10's minimum: mean coverage of the 80% intervals over the 7 budgets >= 65%, with no
    setting tuned on the benchmark (see the module docstring); measured: FLAN 78%, Gigaword 95%."""
    frame = published_calibration[benchmark]
    assert len(frame) == len(RATIOS) and (frame["n_models"] == 30).all()
    assert frame["coverage"].mean() >= 0.65
    assert frame["coverage"].min() >= 0.5
    text = calibration_markdown(frame)
    assert f"## {benchmark}" in text and "| AtS |" in text
