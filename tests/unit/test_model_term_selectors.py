"""The selectors that use the models themselves: LensLLM-NTK (t fixed, t fitted) and NLPMetrics."""

from __future__ import annotations

import numpy as np
import pytest

from lensllm.selection.evaluation import prediction_errors_by_model, score_selections
from lensllm.curves.losstable import LossTable
from lensllm.curves.terms import NtkTerm
from lensllm.probes.ntk import kernel_spectrum
from lensllm.selection import ModelTerms, select
from lensllm.curves.terms import PowerLawFit, WeightMetrics

SIZES = (0, 16, 32, 64, 128, 256, 512)
MODELS = ("a", "b", "c")
STEPS_PER_EXAMPLE = 3 / 16  # 3 epochs, batch 16


def ntk_term(model: str, seed: int) -> NtkTerm:
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(8, 20))
    eigenvalues, projections = kernel_spectrum(g @ g.T, -rng.uniform(2, 5, size=8))
    return NtkTerm(model, "toy", 1e-3, tuple(eigenvalues), tuple(projections), tuple(-rng.uniform(2, 5, size=8)),
                   8, 0, 1000, 1000, "w", flops=1e9 * (seed + 1), seconds=1.0)


def law(b, f, beta, e, sizes):
    return b / (f + np.power(np.asarray(sizes, dtype=float), beta)) + e


@pytest.fixture()
def world():
    """Three models whose curves follow LensLLM's law exactly, with F = F(t) of their NTK at the
    steps of a fine-tune at the budget 128 (t = 24)."""
    terms = {m: ntk_term(m, i) for i, m in enumerate(MODELS)}
    steps = {(m, s): int(round(s * STEPS_PER_EXAMPLE)) for m in MODELS for s in SIZES}
    truth = {"a": (40.0, 0.5, 3.0), "b": (30.0, 0.45, 2.6), "c": (60.0, 0.55, 2.9)}
    losses = np.array([
        law(truth[m][0], float(terms[m].f(steps[(m, 128)])), truth[m][1], truth[m][2], SIZES) for m in MODELS
    ])
    table = LossTable("toy", MODELS, SIZES, losses, np.array([1e6, 2e6, 3e6]), ("x", "y", "z"))
    return table, ModelTerms(terms, steps, {})


def test_fixed_t_holds_f_at_the_ntk_value_of_the_budget_steps(world):
    table, terms = world
    selection = select("LensLLM-NTK-fixed", table, 128, 512, terms=terms)
    assert selection.models == MODELS
    for model, params in zip(selection.models, selection.fitted):
        assert params["F"] == pytest.approx(float(terms.ntk[model].f(terms.steps[(model, 128)])), rel=1e-9)
    # The data follow the law with that very F, so the extrapolation to 512 is close.
    assert np.allclose(selection.predictions, table.column(512), rtol=2e-3)
    assert selection.extra_flops == sum(t.flops for t in terms.ntk.values())


def test_fitted_t_stays_in_its_range_and_recovers_the_curve(world):
    table, terms = world
    selection = select("LensLLM-NTK-fitted", table, 128, 512, terms=terms)
    for model, params in zip(selection.models, selection.fitted):
        term, t_max = terms.ntk[model], terms.steps[(model, 128)] * 512 / 128
        assert float(term.f(t_max)) * (1 - 1e-9) <= params["F"] <= float(term.f(0.0)) * (1 + 1e-9)
        assert 0.0 <= term.t_for(params["F"], t_max) <= t_max
    assert np.allclose(selection.predictions, table.column(512), rtol=2e-3)


def test_ntk_cost_is_charged_on_top_of_the_finetunes(world):
    table, terms = world
    flops_of = {(m, s): 1e6 * s for m in MODELS for s in SIZES}
    with_ntk = select("LensLLM-NTK-fixed", table, 128, 512, terms=terms)
    scores, _ = score_selections([with_ntk, select("LensLLM", table, 128, 512)], table, flops_of)
    charged = dict(zip(scores["method"], scores["flops"]))
    assert charged["LensLLM-NTK-fixed"] == pytest.approx(charged["LensLLM"] + 6e9)
    errors = prediction_errors_by_model([with_ntk], table)
    assert list(errors["model"]) == list(MODELS)
    assert np.allclose(errors["error"], errors["predicted"] - errors["true"])


def test_selectors_without_their_model_terms_stop_with_a_clear_message(world):
    table, _ = world
    with pytest.raises(ValueError, match=r"LensLLM-NTK-fixed needs the NTK terms .* missing for \['a', 'b', 'c'\]"):
        select("LensLLM-NTK-fixed", table, 128, 512)
    with pytest.raises(ValueError, match="NLPMetrics needs the weight spectra"):
        select("NLPMetrics", table, 128, 512)


def test_nlpmetrics_prefers_the_lowest_alpha_and_is_charged_for_the_spectra(world):
    table, _ = world
    fit = PowerLawFit(3.0, 1.0, 0.1, 10, 10.0)
    weights = {m: WeightMetrics(m, alpha, alpha * 1.5, (("layer", fit),), 1e5, 0.1)
               for m, alpha in zip(MODELS, (4.0, 2.5, 6.0))}
    selection = select("NLPMetrics", table, 128, 512, terms=ModelTerms(weights=weights))
    assert selection.scores == (4.0, 2.5, 6.0) and not selection.higher_is_better
    assert selection.selected() == "b" and selection.finetunes == () and selection.extra_flops == 3e5
