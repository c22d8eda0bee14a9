"""The terms of the Hessian PAC-Bayes bound along a curve, and their correlation with the gap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lensllm.curves.losstable import LossTable
from lensllm.probes.bound import DELTA, BoundError, bound_correlation, bound_terms, phase_crossover
from lensllm.report.bound import bound_markdown, plot_bound

SIZES = (0, 8, 16, 32)


def _table():
    return LossTable("toy", ("a", "b"), SIZES, np.array([[5.0, 4.0, 3.5, 3.2], [6.0, 4.5, 4.0, 3.9]]), np.array([1e6, 2e6]), ("x", "y"))


def _runs(distance=(0.2, 1.0, 3.0)):
    rows = [["a", 0, None, None, None], ["b", 0, None, None, None]]
    for model, test, scale in (("a", (4.0, 3.5, 3.2), 1.0), ("b", (4.5, 4.0, 3.9), 1.7)):
        for size, loss, h in zip(SIZES[1:], test, distance):
            rows.append([model, size, loss - 0.1 * size / 8 * scale, 6.0, h * scale])
    return pd.DataFrame(rows, columns=["model", "size", "train_loss", "train_loss_max", "hessian_distance"])


def test_terms_follow_the_formula():
    terms = bound_terms(_table(), _runs(distance=(0.5, -1.0, 2.0)), {"a": 16})
    assert len(terms) == 6 and (terms["size"] > 0).all()
    a16 = terms[(terms["model"] == "a") & (terms["size"] == 16)].iloc[0]
    assert math.isclose(a16["gap"], 0.2)
    assert a16["distance_term"] == 0.0  # sum H_i < 0: the square root of max(., 0)
    a32 = terms[(terms["model"] == "a") & (terms["size"] == 32)].iloc[0]
    assert math.isclose(a32["distance_term"], math.sqrt(6.0 * 2.0 / 32))
    assert math.isclose(a32["remainder_scale"], 32 ** -0.75 * math.log(1 / DELTA))
    assert a32["transition"] == 16 and np.isnan(terms.loc[terms["model"] == "b", "transition"]).all()


def test_correlation_is_pearson_and_spearman_over_sizes_and_models():
    terms = bound_terms(_table(), _runs(), {})
    correlation = bound_correlation(terms)
    row = correlation.iloc[0]
    assert row["benchmark"] == "toy" and row["n_points"] == 6
    assert math.isclose(row["pearson"], float(np.corrcoef(terms["distance_term"], terms["gap"])[0, 1]))
    assert math.isclose(row["spearman"], float(np.corrcoef(terms["distance_term"].rank(), terms["gap"].rank())[0, 1]))
    two = pd.concat([terms, terms.assign(benchmark="other")], ignore_index=True)
    assert list(bound_correlation(two)["benchmark"]) == ["toy", "other", "all"]
    text = bound_markdown(terms, correlation, phase_crossover(terms))
    assert "| toy | 6 |" in text and "| a | 32 |" in text


def test_runs_without_the_measurements_are_named():
    with pytest.raises(BoundError, match="toy: the runs table has no train_loss.*bound_batches"):
        bound_terms(_table(), _runs().drop(columns=["train_loss"]), {})
    empty = _runs()
    empty["hessian_distance"] = None
    with pytest.raises(BoundError, match="bound_batches > 0"):
        bound_terms(_table(), empty, {})


def test_the_figure_is_written(tmp_path):
    plot_bound(bound_terms(_table(), _runs(), {"a": 16}), tmp_path / "bound.png")
    assert (tmp_path / "bound.png").read_bytes()[:4] == b"\x89PNG"


def test_crossover_is_where_the_distance_term_overtakes_the_remainder_for_good():
    terms = pd.DataFrame({"benchmark": "toy", "model": ["a"] * 4 + ["b"] * 2, "size": [4, 8, 16, 32, 4, 8],
                          "distance_term": [0.5, 0.1, 0.3, 0.3, 0.01, 0.01], "remainder_scale": [0.2, 0.2, 0.2, 0.1, 0.5, 0.3],
                          "transition": [8.0] * 4 + [np.nan] * 2})
    crossover = phase_crossover(terms).set_index("model")
    assert crossover.loc["a", "crossover"] == 16  # above at 4, below at 8, above from 16 on
    assert np.isnan(crossover.loc["b", "crossover"]) and crossover.loc["a", "transition"] == 8
