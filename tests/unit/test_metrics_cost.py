import numpy as np
import pytest

from lensllm.cost import CostModel, analytic_flops, cost_reduction, full_tuning_flops, selection_flops
from lensllm.metrics import pearcorr, relacc, rmse


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


def test_flops_are_six_n_tokens_and_charge_each_finetune_once():
    cost = CostModel(tokens_per_example=35, epochs=20, runs_per_size=15)
    assert cost.finetune_flops(1e9, 200) == 6 * 1e9 * 200 * 35 * 20 * 15
    flops = analytic_flops(["a", "b"], [1e8, 3e8], [0, 200, 400, 1_638_400], cost)
    needed = [("a", 200), ("a", 400), ("b", 400), ("a", 400), ("b", 0)]
    assert selection_flops(needed, flops) == pytest.approx(6 * 35 * 20 * 15 * (1e8 * 600 + 3e8 * 400))
    full = full_tuning_flops(["a", "b"], 1_638_400, flops)
    assert full == pytest.approx(6 * 35 * 20 * 15 * 4e8 * 1_638_400)
    assert cost_reduction(full / 4, full) == pytest.approx(0.75)
