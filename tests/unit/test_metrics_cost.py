import numpy as np
import pytest

from lensllm.curves.cost import CostModel, analytic_flops, cost_reduction, full_tuning_flops, selection_flops
from lensllm.curves.metrics import pearcorr, relacc, rmse


def test_pearcorr_is_pearson_times_100():
    assert pearcorr([1, 2, 3], [2, 4, 6]) == pytest.approx(100.0)
    assert pearcorr([1, 2, 3], [6, 4, 2]) == pytest.approx(-100.0)
    assert np.isnan(pearcorr([1, 1, 1], [1, 2, 3]))


def test_relacc_places_the_selected_model_between_worst_and_best():
    losses = [2.0, 3.0, 4.0]
    assert relacc(2.0, losses) == 100.0
    assert relacc(4.0, losses) == 0.0
    assert relacc(3.0, losses) == pytest.approx(50.0)


def test_rmse_is_in_loss_units():
    assert rmse([1.0, 2.0], [1.0, 4.0]) == pytest.approx(np.sqrt(2.0))


def test_six_n_tokens_is_the_flop_count_of_a_linear_layer_trained_on_those_tokens():
    """A 64 x 32 weight matrix (N = 2048) on 10 tokens: 2 N per token forward, 4 N backward (input
    and weight gradients), as torch's FLOP counter counts the matrix products: 6 * 2048 * 10."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    layer = torch.nn.Linear(64, 32, bias=False)
    tokens = torch.randn(10, 64, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        layer(tokens).sum().backward()
    assert counter.get_total_flops() == 122_880
    assert CostModel(tokens_per_example=10, epochs=1, runs_per_size=1).finetune_flops(64 * 32, 1) == 122_880


def test_flops_charge_each_finetune_once_in_hand_computed_numbers():
    cost = CostModel(tokens_per_example=35, epochs=20, runs_per_size=15)  # 6 * 35 * 20 * 15 = 63,000 per parameter-example
    assert cost.finetune_flops(1e9, 200) == pytest.approx(1.26e16, rel=1e-12)
    flops = analytic_flops(["a", "b"], [1e8, 3e8], [0, 200, 400, 1_638_400], cost)
    assert flops[("a", 0)] == 0.0 and flops[("b", 400)] == pytest.approx(7.56e15, rel=1e-12)
    needed = [("a", 200), ("a", 400), ("b", 400), ("a", 400), ("b", 0)]  # (a, 400) twice: charged once
    assert selection_flops(needed, flops) == pytest.approx(1.26e15 + 2.52e15 + 7.56e15, rel=1e-12)
    full = full_tuning_flops(["a", "b"], 1_638_400, flops)
    assert full == pytest.approx(4.128768e19, rel=1e-12)  # 4e8 parameters x 1,638,400 examples x 63,000
    assert cost_reduction(1.032192e19, full) == pytest.approx(0.75, rel=1e-12)
