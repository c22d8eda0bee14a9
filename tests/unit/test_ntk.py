"""The empirical NTK, F(t), the clipping of its spectrum and the parameter subset of large models."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import scipy.linalg
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from lensllm.data.benchmark import Benchmark, Example, write_benchmark
from lensllm.training.tokens import collate_rows, token_loss
from lensllm.curves.terms import ntk_f, read_ntk
from lensllm.probes.ntk import empirical_ntk, kernel_spectrum, main, parameter_subset, probe_indices
from lensllm.training.zoo import ModelSpec, pretrain_model, train_tokenizer


def tiny_model(dtype=torch.float32):
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=29, n_embd=8, n_layer=1, n_head=2, n_positions=16,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(config).to(dtype)
    model.eval()
    model.set_attn_implementation("eager")
    g = torch.Generator().manual_seed(2)
    rows = []
    for length in (5, 8, 6, 7, 9, 4):
        ids = torch.randint(1, 29, (length,), generator=g).tolist()
        rows.append((ids, [-100] + ids[1:]))
    return model, rows


def output(model, row):
    """f(x): the mean log-likelihood of the target tokens of one example."""
    loss_sum, count = token_loss(model, collate_rows([row], 0), False)
    return -loss_sum / count


def test_kernel_is_positive_semidefinite_and_outputs_are_minus_losses():
    model, rows = tiny_model()
    kernel, outputs, flops = empirical_ntk(model, rows, 0, False, list(model.parameters()))
    assert kernel.shape == (6, 6)
    eigenvalues = np.linalg.eigvalsh(kernel)
    assert eigenvalues.min() >= -1e-10 * eigenvalues.max()
    assert np.allclose(outputs, [float(output(model, row).detach()) for row in rows], rtol=1e-6)
    assert (outputs < 0).all() and flops > 0


def test_kernel_equals_the_hand_computed_gradient_inner_products():
    """Against torch.func's Jacobian (J J^T), and entries against central finite differences:
    Theta_ij = d/de f_i(w + e * grad f_j) at e = 0, evaluated without autograd in float64 (the
    job's loss casts logits to float32, so the differences use a float64 loss)."""
    model, rows = tiny_model(torch.float64)
    params = list(model.parameters())
    kernel, _, _ = empirical_ntk(model, rows, 0, False, params)

    names = [n for n, _ in model.named_parameters()]
    base = {n: p.detach() for n, p in model.named_parameters()}

    def outputs(flat_params):
        values = dict(zip(names, flat_params))
        return torch.stack([_functional_output(model, values, row) for row in rows])

    jacobian = torch.func.jacrev(outputs)(tuple(base[n] for n in names))
    flat = torch.cat([j.reshape(len(rows), -1) for j in jacobian], dim=1)
    # The job stacks the gradients in float32: entries agree to about 1e-7 of the kernel's scale.
    scale = np.abs(kernel).max()
    np.testing.assert_allclose(kernel, (flat @ flat.T).numpy(), rtol=1e-6, atol=1e-6 * scale)

    grads = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(output(model, row), params)]) for row in rows]
    eps = 1e-5
    for i, j in [(0, 0), (1, 3), (4, 2), (5, 5)]:
        with torch.no_grad():
            shift = torch.split(grads[j], [p.numel() for p in params])
            for p, s in zip(params, shift):
                p.add_(eps * s.view_as(p))
            plus = float(_functional_output(model, dict(model.named_parameters()), rows[i]))
            for p, s in zip(params, shift):
                p.sub_(2 * eps * s.view_as(p))
            minus = float(_functional_output(model, dict(model.named_parameters()), rows[i]))
            for p, s in zip(params, shift):
                p.add_(eps * s.view_as(p))
        assert (plus - minus) / (2 * eps) == pytest.approx(kernel[i, j], rel=1e-5, abs=1e-6 * scale)


def _functional_output(model, values, row):
    batch = collate_rows([row], 0)
    logits = torch.func.functional_call(model, values, (), {"input_ids": batch["input_ids"],
                                                           "attention_mask": batch["attention_mask"]}).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                             ignore_index=-100, reduction="sum")
    return -loss / (labels != -100).sum()


def random_psd(n, seed=0):
    g = np.random.default_rng(seed).normal(size=(n, n + 3))
    return g @ g.T


def test_negative_eigenvalues_are_clipped_to_zero_and_f_never_grows():
    """A kernel with eigenvalues (-0.5, 0, 1, 3): the spectrum is (0, 0, 1, 3), the projections are
    those on the eigenvectors, and F decays only along 1 and 3 (a negative lambda left in would make
    F grow as exp(+eta t))."""
    u, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(4, 4)))
    kernel = (u * np.array([-0.5, 0.0, 1.0, 3.0])) @ u.T
    r0 = np.array([1.0, -2.0, 0.5, 3.0])
    eigenvalues, projections = kernel_spectrum(kernel, r0)
    np.testing.assert_allclose(eigenvalues, [0.0, 0.0, 1.0, 3.0], atol=1e-12)
    assert eigenvalues[0] == 0.0  # clipped exactly, not a rounding negative
    np.testing.assert_allclose(np.abs(projections), np.abs(u.T @ r0), rtol=1e-10)
    c = u.T @ r0
    for t in (0.0, 10.0, 1e4):
        expected = c[0] ** 2 + c[1] ** 2 + np.exp(-2 * 0.01 * t) * c[2] ** 2 + np.exp(-6 * 0.01 * t) * c[3] ** 2
        assert ntk_f(eigenvalues, projections, 0.01, t) == pytest.approx(expected, rel=1e-10)
    # ntk_f clips too: a stored negative eigenvalue does not make F exceed F(0).
    assert ntk_f(np.array([-0.5, 1.0]), np.array([1.0, 1.0]), 0.01, 1e4) == pytest.approx(1.0, rel=1e-10)


def test_f_is_the_squared_norm_of_the_exponentially_decayed_residual_and_decreases_in_t():
    kernel = random_psd(10, seed=1)
    kernel[:, 0] = kernel[0, :] = 0.0  # a null direction: F(t) tends to its part of r0
    r0 = np.random.default_rng(3).normal(size=10)
    eigenvalues, projections = kernel_spectrum(kernel, r0)
    eta = 1e-3
    for t in (0.0, 1.0, 17.0, 250.0):
        direct = np.sum((scipy.linalg.expm(-eta * t * kernel) @ r0) ** 2)
        assert ntk_f(eigenvalues, projections, eta, t) == pytest.approx(direct, rel=1e-9)
    ts = np.linspace(0, 5000, 200)
    values = ntk_f(eigenvalues, projections, eta, ts)
    assert values[0] == pytest.approx(np.sum(r0**2))
    assert np.all(np.diff(values) <= 1e-12)
    assert ntk_f(eigenvalues, projections, eta, 1e9) == pytest.approx(r0[0] ** 2, rel=1e-9)


def test_parameter_subset_is_everything_below_the_threshold_and_the_output_end_above():
    model, _ = tiny_model()
    named = list(model.named_parameters())
    total = sum(p.numel() for _, p in named)
    assert parameter_subset(model, total) == named
    subset = parameter_subset(model, total // 3)
    assert sum(p.numel() for _, p in subset) <= total // 3
    assert [n for n, _ in subset] == [n for n, _ in named[-len(subset):]]  # a contiguous output end
    assert subset[-1][0] == "transformer.ln_f.bias"
    with pytest.raises(ValueError, match="max_params"):
        parameter_subset(model, 1)


def test_kernel_on_the_parameter_subset_equals_jacrev_over_those_parameters():
    """The subset kernel as `compute_ntk` takes it (only the chosen tensors require grad), against
    J J^T from torch.func.jacrev over the same tensors, the others held at their values."""
    model, rows = tiny_model(torch.float64)
    total = sum(p.numel() for p in model.parameters())
    subset = parameter_subset(model, total // 3)
    chosen = {id(p) for _, p in subset}
    for param in model.parameters():
        param.requires_grad_(id(param) in chosen)
    kernel, _, _ = empirical_ntk(model, rows, 0, False, [p for _, p in subset])

    names = [n for n, _ in subset]

    def outputs(values):
        return torch.stack([_functional_output(model, dict(zip(names, values)), row) for row in rows])

    jacobian = torch.func.jacrev(outputs)(tuple(p.detach() for _, p in subset))
    flat = torch.cat([j.reshape(len(rows), -1) for j in jacobian], dim=1)
    assert flat.shape[1] == sum(p.numel() for _, p in subset) <= total // 3
    expected = (flat @ flat.T).numpy()
    # The job stacks the gradients in float32: entries agree to about 1e-7 of the kernel's scale.
    np.testing.assert_allclose(kernel, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
    for param in model.parameters():
        param.requires_grad_(True)
    full, _, _ = empirical_ntk(model, rows, 0, False, list(model.parameters()))
    assert np.trace(kernel) < 0.99 * np.trace(full)  # the subset kernel is a part of the full one


def test_probe_sample_is_seeded():
    assert probe_indices(100, 8, 0) == probe_indices(100, 8, 0)
    assert probe_indices(100, 8, 0) != probe_indices(100, 8, 1)
    assert probe_indices(5, 8, 0) == [0, 1, 2, 3, 4]


def test_command_line_measures_a_saved_model_and_writes_its_term(tmp_path):
    texts = [f"the {w} number {i} is by the {v}" for i in range(30) for w, v in (("cat", "tree"), ("dog", "river"))]
    train_tokenizer(texts, 300, tmp_path / "tok", seed=0)
    spec = ModelSpec("tiny", "llama", 32, 1, 2, 64, 2, (("toy", 1.0),), batch_size=4, seq_len=16)
    pretrain_model(spec, tmp_path / "tok", {"toy": texts}, tmp_path / "model")
    bench = Benchmark("toy", "pairs", tuple(Example(f"q{i}", t) for i, t in enumerate(texts[:40])),
                      tuple(Example("q", t) for t in texts[40:50]))
    write_benchmark(bench, tmp_path / "toy.jsonl")
    out = tmp_path / "ntk.json"
    args = ["--model", str(tmp_path / "model"), "--model-name", "tiny", "--benchmark", str(tmp_path / "toy.jsonl"),
            "--out", str(out), "--eta", "0.001", "--probes", "8", "--seed", "0"]
    assert main(args) == 0
    term = read_ntk(out)
    assert term.model == "tiny" and term.benchmark == "toy" and term.n_probes == 8
    assert term.params_used == term.params_total and term.flops > 0
    assert term.f(0.0) == pytest.approx(sum(r * r for r in term.residuals))
    assert all(r < 0 for r in term.residuals)
    assert main(args[:-4] + ["--out", str(tmp_path / "again.json"), "--probes", "8", "--seed", "0"]) == 0
    first, second = json.loads(out.read_text()), json.loads((tmp_path / "again.json").read_text())
    assert first["eigenvalues"] == second["eigenvalues"]  # same seed, same numbers
    subset = tmp_path / "subset.json"
    assert main(args[:6] + ["--out", str(subset), "--eta", "0.001", "--probes", "8", "--max-params", "5000"]) == 0
    assert 0 < read_ntk(subset).params_used <= 5000 < read_ntk(subset).params_total


@pytest.mark.parametrize("text, reason", [("{", "Expecting property name"), ('{"model": "m"}', "eigenvalues"),
                                          ('{"eigenvalues": [], "projections": [], "residuals": [], "colour": 1}', "colour")])
def test_an_unreadable_ntk_file_is_named(tmp_path, text, reason):
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: not an NTK term written by lensllm.probes.ntk: .*{reason}"):
        read_ntk(path)
    with pytest.raises(ValueError, match=rf"{re.escape(str(tmp_path / 'absent.json'))}: not an NTK term"):
        read_ntk(tmp_path / "absent.json")
