import numpy as np
import pytest

from lensllm.curves.losstable import LossTable
from lensllm.selection.recommend import read_coverage, recommend, recommendation_frame, recommendation_markdown

SIZES = (0, 16, 32, 64, 128, 256)
BUDGET, N = 256, 20_000


def table(offsets):
    """Curves L = (2 + offset) * D^-0.1 (zero-shot 5), with a little seeded noise so that the
    backtest has an error to measure; `offsets` per model."""
    rng = np.random.default_rng(0)
    rows = [[5.0] + [(2.0 + o) * s**-0.1 * np.exp(rng.normal(0, 0.0005)) for s in SIZES[1:]] for o in offsets]
    models = tuple(f"m{i}" for i in range(len(offsets)))
    return LossTable("toy", models, SIZES, np.array(rows), np.full(len(offsets), 1e6), ("x",) * len(offsets))


def flops(models):
    return {(m, s): 1e9 * s * (i + 1) for i, m in enumerate(models) for s in SIZES}


def test_a_clear_best_is_picked_nearly_surely_and_needs_no_next_step():
    t = table([0.0, 0.5, 1.0])
    r = recommend(t, flops(t.models), N, BUDGET, ["AtS", "VanillaFit"], "AtS", coverage={"AtS": "covered 78% on flan"})
    assert (r.pick, r.runner_up) == ("m0", "m1")
    assert r.p_best_pick > 0.99 and r.next_step() is None
    assert r.flops_spent["m1"] == pytest.approx(2e9 * sum(SIZES))
    assert r.flops_at_full["m1"] == pytest.approx(2e9 * BUDGET * N / BUDGET)
    text = recommendation_markdown([r])
    assert "## toy: fine-tune **m0**" in text and "runner-up: m1" in text
    assert "Intervals: nominal 80%, covered 78% on flan." in text
    assert "no further fine-tune is needed" in text


def test_two_indistinguishable_candidates_get_the_next_step_that_would_settle_them():
    t = table([0.0, 0.0005, 1.5])
    r = recommend(t, flops(t.models), N, BUDGET, ["AtS"], "AtS")
    assert r.p_best_pick < 0.8
    step = r.next_step()
    assert set(step.models) == {"m0", "m1"} and step.size == 2 * BUDGET
    # Each contender's fine-tune at 2b costs twice its fine-tune at b.
    assert step.flops == pytest.approx(2 * (1e9 * BUDGET + 2e9 * BUDGET))
    text = recommendation_markdown([r])
    assert f"**To settle it:** fine-tune {', '.join(step.models)} at 512 examples" in text
    assert "`select.budget: 512` and only these candidates (m2 hold less than 5% of P(best))" in text


def test_the_recommendation_reads_nothing_above_the_budget():
    t = table([0.0, 0.3, 0.6])
    cut = LossTable(t.benchmark, t.models, SIZES[:-1], t.losses[:, :-1], t.params, t.families)
    corrupted = t.losses.copy()
    corrupted[:, -1] = 99.0
    a = recommendation_frame([recommend(cut, flops(t.models), N, 128, ["AtS", "RectifiedFit"], "AtS")])
    b = recommendation_frame([recommend(LossTable(t.benchmark, t.models, SIZES, corrupted, t.params, t.families),
                                        flops(t.models), N, 128, ["AtS", "RectifiedFit"], "AtS")])
    assert a.equals(b)
    assert set(a.columns) >= {"p_best", "predicted", "low", "high", "rank", "flops_spent", "flops_at_full"}


def test_bad_choices_are_named():
    t = table([0.0, 0.5])
    with pytest.raises(ValueError, match="key 'select.pick_method': LensLLM is not one of select.methods"):
        recommend(t, flops(t.models), N, BUDGET, ["AtS"], "LensLLM")
    one = LossTable("toy", ("m0",), SIZES, t.losses[:1], t.params[:1], ("x",))
    with pytest.raises(ValueError, match="choosing needs at least two candidates"):
        recommend(one, flops(one.models), N, BUDGET, ["AtS"], "AtS")
    with pytest.raises(ValueError, match="no measured FLOPs of the fine-tune at 256 for \\['m1'\\]"):
        recommend(t, {k: v for k, v in flops(t.models).items() if k != ("m1", 256)}, N, BUDGET, ["AtS"], "AtS")


def test_coverage_text_comes_from_the_measured_table(tmp_path):
    path = tmp_path / "coverage.tsv"
    path.write_text("benchmark\tmethod\tlevel\tcoverage\nflan\tAtS\t0.8\t0.78\ngigaword\tAtS\t0.8\t0.952\nflan\tAtS\t0.9\t0.5\n")
    assert read_coverage(path, 0.8) == {"AtS": "covered 78% on flan, 95% on gigaword (published curves)"}
    path.write_text("benchmark\tmethod\n")
    with pytest.raises(ValueError, match="missing column"):
        read_coverage(path, 0.8)


def test_energy_is_reported_beside_the_flops_and_never_guessed():
    t = table([0.0, 0.5, 1.0])
    energy = {(m, s): 10.0 * s for m in t.models for s in SIZES}
    energy[("m2", 64)] = None  # a job that read no counter
    r = recommend(t, flops(t.models), N, BUDGET, ["AtS"], "AtS", energy=energy)
    assert r.energy_spent["m0"] == pytest.approx(10.0 * sum(SIZES)) and r.energy_spent["m2"] is None
    frame = recommendation_frame([r]).set_index("model")
    columns = list(frame.columns)
    assert columns.index("energy_spent") == columns.index("flops_spent") + 1
    assert frame.loc["m0", "energy_spent"] == pytest.approx(10.0 * sum(SIZES)) and np.isnan(frame.loc["m2", "energy_spent"])
    text = recommendation_markdown([r])
    assert "| FLOPs spent | energy spent | FLOPs at N |" in text and "not measured" in text
    assert recommend(t, flops(t.models), N, BUDGET, ["AtS"], "AtS").energy_spent == {m: None for m in t.models}
