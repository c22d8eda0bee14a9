import numpy as np
import pandas as pd
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


# --- select mode's rounds ------------------------------------------------------------------------

from lensllm.report.run_figures import plot_recommendation  # noqa: E402
from lensllm.selection import RaceSettings  # noqa: E402
from lensllm.selection.rounds import (  # noqa: E402
    RACE_METHOD,
    ROUNDS_COLUMNS,
    continue_rounds,
    read_rounds,
    recommend_rounds,
    rounds_frame,
    rounds_markdown,
    rounds_total_markdown,
    start_rounds,
    write_rounds,
)

ROUND0 = (16, 32, 64, 128)
LADDER = (256, 512, 1024)
# Five candidates: L = a * D^-b (with a little seeded noise); m0 and m1 are close, m4 is hopeless.
CURVES = {"m0": (6.0, 0.10), "m1": (6.1, 0.105), "m2": (6.5, 0.09), "m3": (8.0, 0.05), "m4": (12.0, 0.02)}
PER_EXAMPLE = {"m0": 2e8, "m1": 1e8, "m2": 3e8, "m3": 1e8, "m4": 5e8}


def job(model, size):
    """The record of a fine-tune (lensllm.curves.collect.read_job's keys the rounds read)."""
    a, b = CURVES[model]
    if size == 0:  # zero-shot: the rounds ignore it
        return {"model": model, "size": 0, "test_loss": 5.0, "flops_measured": 0.0, "energy_joules": None}
    noise = np.exp(np.random.default_rng(size * 7 + int(model[1:])).normal(0, 0.002))
    return {"model": model, "size": size, "test_loss": a * size**-b * noise, "flops_measured": PER_EXAMPLE[model] * size,
            "energy_joules": None}


def race_settings(**knobs):
    base = dict(first=1, contenders=3, margin=0.1, reach=8, max_rounds=4, settle_p_best=0.99, shared=0.5)
    return RaceSettings(**{**base, **knobs})


def run_rounds(flops_budget, benchmarks=1, train_examples=None, **knobs):
    """Round 0, then each round on exactly the fine-tunes the last one bought, as the jobs do."""
    jobs = [job(m, s) for m in CURVES for s in (0, *ROUND0)]
    record = start_rounds("toy", list(CURVES), jobs, 128, N, LADDER, flops_budget, benchmarks, 3, 5.0,
                          race_settings(**knobs), train_examples)
    while not record.last.stopped:
        record = continue_rounds(record, [job(m, s) for m, s in record.last.next])
    return record


def round0_recommendation(record):
    t = round0_table(record)
    return recommend(t, {(m, s): PER_EXAMPLE[m] * s for m in t.models for s in (0, *ROUND0)}, N, 128,
                     ["AtS", "VanillaFit"], "AtS", coverage={"AtS": "covered 78% on flan"})


def test_rounds_extend_only_the_contenders_within_the_flops_budget():
    round0 = sum(PER_EXAMPLE[m] * sum(ROUND0) for m in CURVES)
    record = run_rounds(2.5 * round0)
    assert record.rounds[0].bought == tuple((m, s) for m in CURVES for s in ROUND0)
    assert record.spent <= 2.5 * round0 and record.spent == pytest.approx(sum(r.flops for r in record.rounds))
    assert len(record.rounds) >= 3
    for before, after in zip(record.rounds, record.rounds[1:]):
        # A round buys the last one's purchases only: contenders, each at the doubling of its largest size.
        assert set(after.bought) == set(before.next) and {m for m, _ in after.bought} <= set(before.contenders)
        assert set(after.contenders) <= set(before.contenders)  # once dropped, never extended again
        for model, size in after.bought:
            assert size == 2 * max(s for s in record.owned[model] if s < size)
    assert "m4" not in record.rounds[0].contenders and max(record.owned["m4"]) == 128
    assert record.last.stopped.startswith(("budget spent", "settled", "max_rounds", "no larger size"))
    assert all(s <= 1024 for points in record.owned.values() for s in points)


def test_a_round_takes_exactly_what_the_last_one_bought():
    record = start_rounds("toy", list(CURVES), [job(m, s) for m in CURVES for s in ROUND0], 128, N, LADDER,
                          None, 1, 3, 5.0, race_settings())
    assert record.last.next and record.cap_flops == float("inf")
    (model, size), *rest = record.last.next
    with pytest.raises(ValueError, match="takes the fine-tunes round 0 bought"):
        continue_rounds(record, [job(m, s) for m, s in rest])
    with pytest.raises(ValueError, match="takes the fine-tunes round 0 bought"):
        continue_rounds(record, [job(m, s) for m, s in record.last.next] + [job("m4", 256)])
    with pytest.raises(ValueError, match="round 0 holds the candidates"):
        start_rounds("toy", list(CURVES), [job("m0", 256)], 128, N, LADDER, None, 1, 3, 5.0, race_settings())


def test_the_budget_is_a_total_split_between_the_benchmarks_and_round_0_counts():
    round0 = sum(PER_EXAMPLE[m] * sum(ROUND0) for m in CURVES)
    alone, shared = run_rounds(3 * round0), run_rounds(3 * round0, benchmarks=3)
    assert shared.cap_flops == pytest.approx(round0) and alone.cap_flops == pytest.approx(3 * round0)
    # A third of three times round 0 is round 0 itself: nothing is left for a round.
    assert len(shared.rounds) == 1 and shared.last.stopped.startswith("budget spent") and not shared.last.next
    assert len(alone.rounds) > 1
    text = rounds_markdown([recommend_rounds(shared, round0_recommendation(shared))])
    assert "a total over round 0, every round and every benchmark; split equally between the 3 benchmarks" in text
    over = run_rounds(0.5 * round0)  # round 0 alone is above the budget: no round is bought, and it says so
    assert len(over.rounds) == 1 and over.last.stopped.startswith("budget spent")
    text = rounds_markdown([recommend_rounds(over, round0_recommendation(over))])
    assert "round 0 alone spent more than this benchmark's share, so no round could be bought" in text


def test_the_rounds_stop_settled_at_max_rounds_or_at_the_largest_size():
    settled = run_rounds(None, settle_p_best=0.2)
    assert settled.last.stopped.startswith("settled: P(best) of") and settled.last.pick.p_best >= 0.2
    capped = run_rounds(None, max_rounds=1)
    assert len(capped.rounds) == 2 and capped.last.stopped == "max_rounds: 1 rounds after round 0 were run"
    small = run_rounds(None, train_examples=300)  # the data hold 300 training examples: 256 is the last size
    assert small.ladder == (256,) and small.last.stopped.startswith("no larger size")
    assert max(max(points) for points in small.owned.values()) == 256


def test_the_record_round_trips_byte_for_byte(tmp_path):
    record = run_rounds(None, max_rounds=2)
    write_rounds(record, tmp_path / "a.json")
    again = read_rounds(tmp_path / "a.json")
    assert again == record
    write_rounds(again, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    # The next round from the file is the next round from memory.
    first = start_rounds("toy", list(CURVES), [job(m, s) for m in CURVES for s in ROUND0], 128, N, LADDER, None, 1,
                         3, 5.0, race_settings())
    write_rounds(first, tmp_path / "round0.json")
    assert continue_rounds(read_rounds(tmp_path / "round0.json"), [job(m, s) for m, s in first.last.next]) == \
        continue_rounds(first, [job(m, s) for m, s in first.last.next])


def test_the_rounds_recommendation_picks_the_lowest_expected_loss_and_says_why(tmp_path):
    record = run_rounds(2.5 * sum(PER_EXAMPLE[m] * sum(ROUND0) for m in CURVES))
    r = recommend_rounds(record, round0_recommendation(record))
    expected = {s.model: s.expected for s in record.last.standings}
    assert r.pick.model == min(expected, key=expected.get)
    frame = rounds_frame([r])
    assert list(frame.columns) == ROUNDS_COLUMNS
    race = frame[frame["method"] == RACE_METHOD]
    assert list(race["model"]) == sorted(expected, key=expected.get) and list(race["rank"]) == [1, 2, 3, 4, 5]
    assert (race["round"] == record.last.index).all() and race["p_best"].sum() == pytest.approx(1.0)
    assert (race["low"] < race["predicted"]).all() and (race["predicted"] < race["high"]).all()
    assert dict(zip(race["model"], race["cap"])) == {m: max(p) for m, p in record.owned.items()}
    assert set(frame["method"]) == {RACE_METHOD, "AtS", "VanillaFit"} and (frame[frame["method"] == "AtS"]["round"] == 0).all()
    text = rounds_markdown([r])
    assert f"## toy: fine-tune **{r.pick.model}**" in text
    assert "minimises the expected loss E[L] = median x exp(sigma^2 / 2)" in text and "linear in its loss" in text
    assert f"**Why the rounds stopped:** {record.last.stopped}." in text
    for rnd in record.rounds:
        assert f"| {rnd.index} | " in text
    assert "| 0 | all 5 candidates at 16, 32, 64, 128 (20 fine-tunes) |" in text
    assert "select.flops_budget: a total over round 0, every round and every benchmark; one benchmark" in text
    assert " -> ".join(f"{rnd.pick.p_best:.2f}" for rnd in record.rounds) in text
    assert "| model | AtS | VanillaFit |" in text  # round 0's forecasts of every method, as without rounds
    with pytest.raises(ValueError, match="not the last round"):
        recommend_rounds(start_rounds("toy", list(CURVES), [job(m, s) for m in CURVES for s in ROUND0], 128, N, LADDER,
                                      None, 1, 3, 5.0, race_settings()), r.round0)
    plot_recommendation(round0_table(record), N, 128, "AtS", tmp_path / "rounds.png", rounds=record)
    assert (tmp_path / "rounds.png").stat().st_size > 0


def round0_table(record):
    return LossTable("toy", record.models, (0, *ROUND0),
                     np.array([[5.0] + [record.owned[m][s] for s in ROUND0] for m in record.models]),
                     np.full(len(record.models), 1e6), ("x",) * len(record.models))


def test_recommendation_md_sums_the_rounds_of_every_benchmark_against_the_total_budget():
    record = run_rounds(None, max_rounds=1)
    frame = rounds_frame([recommend_rounds(record, round0_recommendation(record))])
    assert rounds_total_markdown(frame, 1e12) == ""  # one benchmark: its own section says it all
    two = pd.concat([frame, frame.assign(benchmark="other")])
    assert rounds_total_markdown(two, 1e12) == (
        f"The rounds on the 2 benchmarks spent {2 * record.spent:.2e} FLOPs in all of the FLOPs budget 1.00e+12 "
        "(a total, split equally).\n\n")
