import dataclasses

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from lensllm.curves.fitting import FitError, FitStatus, fit_curves
from lensllm.curves.laws import LAWS, LENSLLM, RECTIFIED, VANILLA
from lensllm.curves.losstable import read_losstable


@pytest.mark.parametrize("benchmark, published_rms", [("flan", 0.0065), ("gigaword", 0.0052)])
def test_rectified_fits_are_as_tight_as_the_published_ones(published_dir, benchmark, published_rms):
    table = read_losstable(published_dir / f"{benchmark}.csv")
    sizes = table.train_sizes()
    assert len(sizes) == 14
    fits = fit_curves(RECTIFIED, [sizes] * len(table.models), [table.curve(m, sizes) for m in table.models])
    assert all(f.ok for f in fits)
    assert np.mean([f.rms_log for f in fits]) <= published_rms


@pytest.mark.parametrize("law", [RECTIFIED, LENSLLM])
def test_fits_move_off_their_starting_points_and_lower_the_objective(published_dir, law):
    table = read_losstable(published_dir / "flan.csv")
    sizes = (0, *table.train_sizes(51200))
    for model in table.models[:10]:
        losses = table.curve(model, sizes)
        (fit,) = fit_curves(law, [sizes], [losses])
        assert fit.ok
        assert not np.allclose(fit.theta, fit.start)
        start_cost = 0.5 * np.sum((np.log(law.predict(np.array(fit.start), np.array(sizes, float))) - np.log(losses)) ** 2)
        assert fit.objective < start_cost


@pytest.mark.parametrize("name", sorted(LAWS))
def test_predictions_never_increase_with_data_size(published_dir, name):
    table = read_losstable(published_dir / "gigaword.csv")
    sizes = table.train_sizes(25600)
    grid = np.geomspace(1, 1e9, 400)
    for fit in fit_curves(LAWS[name], [sizes] * 30, [table.curve(m, sizes) for m in table.models]):
        if fit.ok:
            predictions = fit.predict(grid)
            assert np.all(np.isfinite(predictions))
            assert np.all(np.diff(predictions) <= 1e-12)


def test_a_fit_recovers_the_parameters_it_was_made_from():
    sizes = np.array([0, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600], float)
    truth = {"B": 300.0, "D_l": 150.0, "beta": 0.6, "E": 1.1}
    losses = RECTIFIED.predict(RECTIFIED.theta(truth), sizes)
    (fit,) = fit_curves(RECTIFIED, [sizes], [losses])
    assert fit.status is FitStatus.CONVERGED
    for name, value in truth.items():
        assert fit.params[name] == pytest.approx(value, rel=1e-3)


def test_a_fit_whose_optimum_lies_on_a_bound_reports_hit_bound_and_still_predicts():
    """A rectified curve with E = 0, the lower bound of E: the fit recovers it, on the bound."""
    sizes = np.array([0, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600], float)
    (fit,) = fit_curves(RECTIFIED, [sizes], [300.0 / (150.0 + sizes**0.6)])
    assert fit.status is FitStatus.HIT_BOUND and fit.message == "at bound: E" and fit.ok
    assert fit.params["E"] == pytest.approx(0.0, abs=1e-9) and fit.params["beta"] == pytest.approx(0.6, rel=1e-6)
    assert fit.predict([1e5])[0] == pytest.approx(300.0 / (150.0 + 1e5**0.6), rel=1e-6)


def test_a_fit_that_runs_out_of_iterations_fails_instead_of_returning_its_last_point(monkeypatch):
    import lensllm.curves.fitting

    monkeypatch.setattr(lensllm.curves.fitting, "MAX_ITERATIONS", 2)
    sizes = np.array([0, 100, 200, 400, 800, 1600, 3200, 6400], float)
    losses = RECTIFIED.predict(RECTIFIED.theta({"B": 300.0, "D_l": 150.0, "beta": 0.6, "E": 1.1}), sizes) * (1 + 0.01 * np.sin(sizes))
    (fit,) = fit_curves(RECTIFIED, [sizes], [losses])
    assert fit.status is FitStatus.FAILED and fit.message == "no convergence in 2 iterations" and not fit.ok


def test_same_seed_same_fit_and_results_are_frozen(published_dir):
    table = read_losstable(published_dir / "flan.csv")
    sizes = table.train_sizes()
    (first,) = fit_curves(VANILLA, [sizes], [table.curve("gpt2", sizes)], seed=7)
    (second,) = fit_curves(VANILLA, [sizes], [table.curve("gpt2", sizes)], seed=7)
    assert first.theta == second.theta
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.status = FitStatus.FAILED


def test_a_curve_that_cannot_be_fitted_fails_with_a_status_not_a_nan():
    (fit,) = fit_curves(RECTIFIED, [[200, 400]], [[float("nan"), 2.0]])
    assert fit.status is FitStatus.FAILED and "positive and finite" in fit.message
    with pytest.raises(FitError):
        fit.predict([1000])


@pytest.mark.parametrize("name, theta", [("rectified", [8.0, 5.0, 0.6, 1.2]), ("vanilla", [2.0, 0.3, 0.5, 1.3])])
def test_analytic_jacobians_match_finite_differences(name, theta):
    law, theta = LAWS[name], np.array(theta)
    sizes = np.array([200.0, 400, 1600, 1e5]) if name == "vanilla" else np.array([0.0, 200, 400, 1600, 1e5])
    numeric = np.stack([approx_fprime(theta, lambda t, i=i: np.log(law.predict(t, sizes))[i], 1e-7) for i in range(len(sizes))])
    np.testing.assert_allclose(law.log_jacobian(theta, sizes), numeric, atol=1e-5)
