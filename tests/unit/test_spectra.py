"""NLPmetrics: the power-law fit of weight spectra, on matrices whose answer is known."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import scipy.integrate
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from lensllm.curves.terms import read_weight_metrics, write_weight_metrics
from lensllm.probes.spectra import fit_power_law, layer_weights, spectrum, weight_metrics


def marchenko_pastur_alpha(q: float, x_min: float) -> float:
    """The exponent the estimator converges to on the Marchenko-Pastur law above x_min:
    1 + 1 / E[ln(x / x_min) | x >= x_min] for the density of the eigenvalues of W^T W / N,
    W an N x M standard Gaussian matrix and q = M / N."""
    lo, hi = (1 - np.sqrt(q)) ** 2, (1 + np.sqrt(q)) ** 2

    def density(x):
        return np.sqrt(max((hi - x) * (x - lo), 0.0)) / (2 * np.pi * q * x)

    mass = scipy.integrate.quad(density, x_min, hi)[0]
    mean_log = scipy.integrate.quad(lambda x: density(x) * np.log(x / x_min), x_min, hi)[0] / mass
    return 1.0 + 1.0 / mean_log


@pytest.mark.parametrize("n, m", [(1000, 250), (512, 128)])
def test_random_gaussian_matrix_gives_the_marchenko_pastur_exponent(n, m):
    weight = np.random.default_rng(0).normal(size=(n, m))
    fit = fit_power_law(spectrum(weight))
    expected = marchenko_pastur_alpha(m / n, fit.lambda_min / n)
    assert fit.alpha == pytest.approx(expected, rel=0.05)
    assert fit.alpha > 4.5  # far above the heavy-tailed range (2 to 4) of well-trained layers


def test_matrix_with_power_law_singular_values_gives_its_exponent():
    """W = U diag(sqrt(lambda)) V^T with lambda drawn from p(lambda) ~ lambda^-2.5 above 1."""
    rng = np.random.default_rng(1)
    n, m, alpha = 1200, 600, 2.5
    lam = (1.0 - rng.random(m)) ** (-1.0 / (alpha - 1.0))
    u, _ = np.linalg.qr(rng.normal(size=(n, m)))
    v, _ = np.linalg.qr(rng.normal(size=(m, m)))
    weight = (u * np.sqrt(lam)) @ v.T
    assert np.allclose(spectrum(weight), np.sort(lam), rtol=1e-8)
    fit = fit_power_law(spectrum(weight))
    assert fit.alpha == pytest.approx(alpha, abs=0.25)
    assert fit.lambda_max == pytest.approx(lam.max())


def test_fit_refuses_too_short_spectra():
    with pytest.raises(ValueError, match="at least 5"):
        fit_power_law([1.0, 2.0, 3.0])


def test_model_metrics_cover_linear_layers_only_and_round_trip(tmp_path):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=16))
    layers = layer_weights(model)
    assert [name for name, _ in layers] == [f"transformer.h.{i}.{part}" for i in range(2)
                                            for part in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]
    metrics = weight_metrics("tiny", layers)
    assert metrics.alpha == pytest.approx(np.mean([fit.alpha for _, fit in metrics.layers]))
    assert metrics.alpha_weighted == pytest.approx(
        np.mean([fit.alpha * np.log10(fit.lambda_max) for _, fit in metrics.layers]))
    write_weight_metrics(metrics, tmp_path / "m.json")
    assert read_weight_metrics(tmp_path / "m.json") == metrics


@pytest.mark.filterwarnings("ignore:Passing a dict to DataFrame.from_records")
def test_layer_exponents_equal_weightwatchers():
    """The maintained reference: weightwatcher 0.7.7 (a test dependency, not a run-time one) gives
    the same alpha for every layer, on a GPT-2 and a T5 model with trained-looking spectra."""
    if os.environ.get("CI") is None:
        pytest.importorskip("weightwatcher")
    import logging

    import weightwatcher
    from transformers import T5Config, T5ForConditionalGeneration

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    torch.manual_seed(0)
    models = [GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=64, n_layer=2, n_head=2, n_positions=16)),
              T5ForConditionalGeneration(T5Config(vocab_size=100, d_model=48, d_kv=12, d_ff=96, num_layers=1, num_heads=4))]
    rng = np.random.default_rng(0)
    checked = 0
    for model in models:
        with torch.no_grad():  # heavy-tailed singular values, like trained layers, instead of Gaussian ones
            for _, module in model.named_modules():
                weight = getattr(module, "weight", None)
                if weight is not None and weight.dim() == 2 and min(weight.shape) >= 16:
                    u, _, vt = torch.linalg.svd(weight, full_matrices=False)
                    heavy = torch.tensor((1.0 - rng.random(u.shape[1])) ** (-1.0 / 1.5), dtype=weight.dtype)
                    weight.copy_((u * heavy.sqrt()) @ vt)
        reference = weightwatcher.WeightWatcher(model=model).analyze(min_evals=10, plot=False, mp_fit=False)
        reference = dict(zip(reference["longname"], reference["alpha"]))
        for name, fit in weight_metrics("m", layer_weights(model)).layers:
            assert fit.alpha == pytest.approx(reference[name], rel=1e-6), name
            checked += 1
    assert checked >= 12


@pytest.mark.parametrize("text, reason", [("[1, 2", "Expecting"), ('{"model": "m"}', "layers"),
                                          ('{"layers": [["l", {"alpha": 3.0}]]}', "missing")])
def test_unreadable_weight_metrics_are_named(tmp_path, text, reason):
    path = tmp_path / "w.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: not weight metrics written by lensllm.probes.spectra: .*{reason}"):
        read_weight_metrics(path)
    with pytest.raises(ValueError, match=rf"{re.escape(str(tmp_path / 'absent.json'))}: not weight metrics"):
        read_weight_metrics(tmp_path / "absent.json")
