"""Hutchinson's Hessian trace against the exact trace, and inside the fine-tuning job."""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from lensllm.training.evaluation import loss_hessian_trace
from lensllm.training.tokens import collate_rows, labelled_tokens, token_loss
from lensllm.training.hessian import hutchinson_trace, rademacher_like


def test_rademacher_vectors_are_signs_and_reproducible():
    params = [torch.zeros(3, 4), torch.zeros(5)]
    v = rademacher_like(params, seed=7)
    assert [x.shape for x in v] == [p.shape for p in params]
    assert all(set(x.unique().tolist()) <= {-1.0, 1.0} for x in v)
    assert all(torch.equal(a, b) for a, b in zip(v, rademacher_like(params, seed=7)))


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    """v^T diag(a) v = sum(a) for every sign vector v: one probe gives the exact trace."""
    w = torch.randn(50, requires_grad=True, generator=torch.Generator().manual_seed(0))
    a = torch.linspace(0.5, 3.0, 50)
    estimate = hutchinson_trace([0.5 * torch.sum(a * w**2)], [w], probes=3, seed=1)
    assert abs(estimate.trace - float(a.sum())) < 1e-9 * float(a.sum())
    assert estimate.stderr < 1e-9


def tiny_model_and_rows():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=23, n_embd=8, n_layer=1, n_head=2, n_positions=16,
                                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    g = torch.Generator().manual_seed(1)
    rows = []
    for length in (6, 9, 7, 5, 8):
        ids = torch.randint(1, 23, (length,), generator=g).tolist()
        rows.append((ids, [-100, -100] + ids[2:]))
    return model, rows


def exact_hessian(model, rows):
    """The full Hessian of the mean per-token loss, one row per parameter (about 1,000 here)."""
    batch = collate_rows(rows, pad=0)
    model.set_attn_implementation("eager")
    model.eval()
    loss_sum, count = token_loss(model, batch, False)
    params = list(model.parameters())
    grads = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss_sum / count, params, create_graph=True)])
    hessian = torch.zeros(grads.numel(), grads.numel(), dtype=torch.float64)
    for i in range(grads.numel()):
        row = torch.autograd.grad(grads[i], params, retain_graph=True, allow_unused=True)
        hessian[i] = torch.cat([torch.zeros(p.numel()) if r is None else r.reshape(-1) for r, p in zip(row, params)])
    return hessian


def test_hutchinson_matches_the_exact_hessian_trace_of_a_tiny_language_model():
    """Stated tolerance: 4 standard deviations of the estimator, from the exact Hessian.

    For Rademacher probes Var[v^T H v] = 2 * sum_{i != j} H_ij^2, so the mean of m probes has
    standard deviation sqrt(2 * (||H||_F^2 - sum_i H_ii^2) / m).
    """
    model, rows = tiny_model_and_rows()
    hessian = exact_hessian(model, rows)
    exact = float(torch.trace(hessian))
    probes = 200
    sigma = float(torch.sqrt(2 * (hessian.square().sum() - torch.diagonal(hessian).square().sum()) / probes))
    estimate = loss_hessian_trace(model, rows, pad=0, batch_size=2, encoder_decoder=False, probes=probes, seed=0)
    assert abs(estimate.trace - exact) <= 4 * sigma
    assert 0.5 * sigma < estimate.stderr < 2 * sigma  # the reported standard error is the right size
    assert labelled_tokens(collate_rows(rows, 0), False) == sum(len(ids) - 2 for ids, _ in rows)


def test_hessian_trace_is_reproducible_and_leaves_the_model_unchanged():
    model, rows = tiny_model_and_rows()
    before = [p.detach().clone() for p in model.parameters()]
    first = loss_hessian_trace(model, rows, 0, 4, False, probes=4, seed=3)
    second = loss_hessian_trace(model, rows, 0, 4, False, probes=4, seed=3)
    assert first.trace == second.trace and first.probes == 4
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())


def test_hessian_distance_is_the_exact_quadratic_form_of_each_block_maximised_over_batches():
    """H_i = max over batches of v_i^T [d^2 loss_b / dW_i^2] v_i, against the exact Hessian block of
    every weight matrix of a tiny language model (torch.autograd.functional.hessian)."""
    from torch.func import functional_call

    from lensllm.training.evaluation import loss_hessian_distance

    model, rows = tiny_model_and_rows()
    g = torch.Generator().manual_seed(5)
    matrices = {name: p for name, p in model.named_parameters() if p.dim() == 2}
    start = {name: p.detach() - 0.1 * torch.randn(p.shape, generator=g) for name, p in matrices.items()}
    batches = [rows[:2], rows[2:]]
    measured = loss_hessian_distance(model, batches, pad=0, encoder_decoder=False, start=start)

    model.set_attn_implementation("eager")
    model.eval()
    parameters = dict(model.named_parameters())
    exact = {}
    for name, p in matrices.items():
        v = (p.detach() - start[name]).reshape(-1)
        per_batch = []
        for batch_rows in batches:
            batch = collate_rows(batch_rows, pad=0)

            def loss(w, name=name, batch=batch):
                logits = functional_call(model, {**parameters, name: w}, (batch["input_ids"],),
                                         {"attention_mask": batch["attention_mask"]}).logits[:, :-1]
                labels = batch["labels"][:, 1:]
                return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                                         ignore_index=-100)

            block = torch.autograd.functional.hessian(loss, p.detach()).reshape(p.numel(), p.numel())
            per_batch.append(float(v @ block @ v))
        exact[name] = per_batch
    assert set(measured.per_matrix) == set(matrices) and measured.batches == 2
    for name, per_batch in exact.items():
        assert abs(per_batch[0] - per_batch[1]) > 1e-3 * max(map(abs, per_batch))  # the batches differ: the max matters
        assert abs(measured.per_matrix[name] - max(per_batch)) <= 1e-3 * max(map(abs, per_batch)) + 1e-7, name
    assert abs(measured.total - sum(max(b) for b in exact.values())) <= 1e-3 * sum(abs(max(b)) for b in exact.values())
    assert all(p.grad is None for p in model.parameters())


def test_hessian_distance_is_zero_where_the_loss_is_linear_and_needs_a_batch():
    import pytest

    from lensllm.training.hessian import hessian_distance

    w = torch.ones(2, 2, requires_grad=True)
    x = torch.ones(2, 2, requires_grad=True)
    distance = hessian_distance([torch.sum(w) + torch.sum(x**2)], {"w": w, "x": x}, {"w": torch.ones(2, 2), "x": torch.ones(2, 2)})
    assert distance.per_matrix == {"w": 0.0, "x": 8.0}  # d^2/dx^2 sum(x^2) = 2 I: v^T 2I v = 8
    with pytest.raises(ValueError, match="at least one batch"):
        hessian_distance([], {"w": w}, {"w": torch.ones(2, 2)})
