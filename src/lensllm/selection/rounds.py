"""Select mode's rounds (select.max_rounds > 0): the record each round's job advances, and the
recommendation after the last round.

Round 0 is the fine-tunes of every candidate up to select.budget; each round then extends only the
contenders (`lensllm.selection.race`). A job per (benchmark, round) advances a `RoundsRecord` by one
`race_round` and writes it (`write_rounds`); the next job reads only that file and the fine-tunes it
bought. The recommendation (`recommend_rounds`, `rounds_markdown`) picks the lowest expected loss at N
after the last round, beside round 0's forecasts of every method (`lensllm.selection.recommend`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
from scipy.special import ndtri

from lensllm.atomic import write_json
from lensllm.selection.race import Calibration, RaceRound, Standing, calibrate, race_round
from lensllm.selection.recommend import (
    RECOMMENDATION_COLUMNS,
    RECOMMENDATION_HEADER,
    Recommendation,
    certainty_words,
    format_flops,
    format_joules,
    recommendation_frame,
    recommendation_markdown,
)
from lensllm.selection.registry import RaceSettings

ROUNDS_FORMAT = "lensllm-select-rounds/1"
RACE_METHOD = "Race"  # the method column of the rounds' standings
ROUNDS_COLUMNS = [*RECOMMENDATION_COLUMNS, "cap", "expected", "round"]


@dataclass(frozen=True)
class RoundsRecord:
    """Select mode's rounds on one benchmark so far: the settings, the calibration of round 0,
    everything owned (model -> size -> test loss), the measured FLOPs (and joules, None where not
    measured) of each (model, size), and every round's `RaceRound`.

    `flops_budget` is select.flops_budget, a total over round 0, every round and every benchmark,
    split equally between the `benchmarks`: this benchmark's cap is `cap_flops` (infinite without
    a FLOPs budget)."""

    benchmark: str
    models: tuple[str, ...]
    budget: int
    full_size: int
    ladder: tuple[int, ...]
    flops_budget: float | None
    benchmarks: int
    k: int
    delta: float
    settings: RaceSettings
    calibration: Calibration
    owned: Mapping[str, Mapping[int, float]]
    cost: Mapping[tuple[str, int], float]
    energy: Mapping[tuple[str, int], float | None]
    rounds: tuple[RaceRound, ...] = ()

    @property
    def cap_flops(self) -> float:
        return float("inf") if self.flops_budget is None else self.flops_budget / self.benchmarks

    @property
    def last(self) -> RaceRound:
        return self.rounds[-1]

    @property
    def spent(self) -> float:
        return float(sum(self.cost.values()))

    def bought_in(self) -> dict[tuple[str, int], int]:
        """The round that bought each (model, size)."""
        return {finetune: r.index for r in self.rounds for finetune in r.bought}


def _job_key(job: Mapping) -> tuple[str, int]:
    return str(job["model"]), int(job["size"])


def _advance(record: RoundsRecord, bought: Sequence[tuple[str, int]]) -> RoundsRecord:
    """`record` with one more round, once its fine-tunes (`bought`) are in it."""
    index = len(record.rounds)
    previous = record.last.contenders if record.rounds else None
    result = race_round(index, record.owned, record.cost, bought, record.ladder, record.budget, record.full_size,
                        record.cap_flops, record.k, record.delta, record.calibration, record.settings, previous)
    if result.stopped.startswith("no larger size"):
        largest = max([record.budget, *record.ladder])
        result = replace(result, stopped=f"no larger size: every contender is fine-tuned at the largest size the "
                                         f"rounds may buy ({largest}: below N, within the training examples "
                                         "and select.reach x budget when set)")
    return replace(record, rounds=(*record.rounds, result))


def start_rounds(benchmark: str, models: Sequence[str], jobs: Sequence[Mapping], budget: int, full_size: int,
                 ladder: Sequence[int], flops_budget: float | None, benchmarks: int, k: int, delta: float,
                 settings: RaceSettings, train_examples: int | None = None) -> RoundsRecord:
    """Round 0 from its fine-tunes: `jobs` are the job records (`lensllm.curves.collect.read_job`) of
    every candidate at every size up to `budget` (zero-shot ignored); the AtS line's error is
    calibrated on them once (`race.calibrate`), and the round decides what round 1 buys. The ladder
    is cut to the benchmark's `train_examples`."""
    owned: dict[str, dict[int, float]] = {m: {} for m in models}
    cost, energy = {}, {}
    for job in jobs:
        model, size = _job_key(job)
        if size == 0:
            continue
        if model not in owned or size > budget:
            raise ValueError(f"{benchmark}: round 0 holds the candidates {list(models)} up to {budget}, not {model} at {size}")
        owned[model][size] = float(job["test_loss"])
        cost[(model, size)] = float(job["flops_measured"])
        energy[(model, size)] = job.get("energy_joules")
    sizes = {m: sorted(owned[m]) for m in models}
    if len(set(map(tuple, sizes.values()))) != 1 or len(sizes[models[0]]) < 2:
        raise ValueError(f"{benchmark}: round 0 needs every candidate at the same two or more sizes, got {sizes}")
    ladder = tuple(s for s in sorted(ladder) if train_examples is None or s <= train_examples)
    record = RoundsRecord(benchmark, tuple(models), budget, full_size, ladder,
                          None if flops_budget is None else float(flops_budget), benchmarks, k, delta, settings,
                          calibrate(owned, k, delta, settings.backtests), owned, cost, energy)
    return _advance(record, [(m, s) for m in models for s in sizes[m]])


def continue_rounds(record: RoundsRecord, jobs: Sequence[Mapping]) -> RoundsRecord:
    """The next round, once the fine-tunes the last round bought have run: `jobs` are exactly their
    records (nothing else is read)."""
    if record.last.stopped:
        raise ValueError(f"{record.benchmark}: the rounds stopped after round {record.last.index} ({record.last.stopped})")
    got = {_job_key(job): job for job in jobs}
    if set(got) != set(record.last.next):
        raise ValueError(f"{record.benchmark}: round {record.last.index + 1} takes the fine-tunes round "
                         f"{record.last.index} bought, {sorted(record.last.next)}, got {sorted(got)}")
    owned = {m: dict(points) for m, points in record.owned.items()}
    cost, energy = dict(record.cost), dict(record.energy)
    for (model, size), job in got.items():
        owned[model][size] = float(job["test_loss"])
        cost[(model, size)] = float(job["flops_measured"])
        energy[(model, size)] = job.get("energy_joules")
    return _advance(replace(record, owned=owned, cost=cost, energy=energy), record.last.next)


def _per_model(values: Mapping[tuple[str, int], object], models: Sequence[str]) -> dict[str, dict[str, object]]:
    return {m: {str(s): v for (model, s), v in sorted(values.items(), key=lambda kv: kv[0][1]) if model == m}
            for m in models}


def _round_json(r: RaceRound) -> dict:
    return {"index": r.index, "bought": [list(b) for b in r.bought], "flops": r.flops, "spent": r.spent,
            "standings": [asdict(s) for s in r.standings], "contenders": list(r.contenders),
            "next": [list(b) for b in r.next], "stopped": r.stopped}


def write_rounds(record: RoundsRecord, path: str | os.PathLike) -> None:
    """The record as one JSON, atomically: the round's job output, all the next round reads."""
    write_json({
        "format": ROUNDS_FORMAT, "benchmark": record.benchmark, "round": record.last.index,
        "models": list(record.models), "budget": record.budget, "full_size": record.full_size,
        "ladder": list(record.ladder), "flops_budget": record.flops_budget, "benchmarks": record.benchmarks,
        "k": record.k, "delta": record.delta, "settings": asdict(record.settings),
        "calibration": asdict(record.calibration),
        "owned": {m: {str(s): loss for s, loss in sorted(record.owned[m].items())} for m in record.models},
        "flops": _per_model(record.cost, record.models), "energy": _per_model(record.energy, record.models),
        "rounds": [_round_json(r) for r in record.rounds],
    }, path)


def read_rounds(path: str | os.PathLike) -> RoundsRecord:
    """A record written by `write_rounds`."""
    data = json.loads(Path(path).read_text())
    if data.get("format") != ROUNDS_FORMAT:
        raise ValueError(f"{path}: not a record of select mode's rounds ({ROUNDS_FORMAT})")
    models = tuple(data["models"])

    def pairs(values):
        return {(m, int(s)): v for m in models for s, v in values[m].items()}

    rounds = tuple(
        RaceRound(r["index"], tuple(tuple(b) for b in r["bought"]), r["flops"], r["spent"],
                  tuple(Standing(**s) for s in r["standings"]), tuple(r["contenders"]),
                  tuple(tuple(b) for b in r["next"]), r["stopped"])
        for r in data["rounds"])
    return RoundsRecord(data["benchmark"], models, data["budget"], data["full_size"], tuple(data["ladder"]),
                        data["flops_budget"], data["benchmarks"], data["k"], data["delta"],
                        RaceSettings(**data["settings"]), Calibration(**data["calibration"]),
                        {m: {int(s): v for s, v in data["owned"][m].items()} for m in models},
                        pairs(data["flops"]), pairs(data["energy"]), rounds)


@dataclass(frozen=True)
class RoundsRecommendation:
    """The verdict of select mode's rounds on one benchmark: the pick is the lowest expected loss
    at N after the last round (`record.last.standings`, best first), P(best) its confidence;
    `round0` is every method's forecast from round 0, as without rounds."""

    record: RoundsRecord
    round0: Recommendation

    @property
    def standings(self) -> tuple[Standing, ...]:
        return self.record.last.standings

    @property
    def pick(self) -> Standing:
        return self.standings[0]

    @property
    def runner_up(self) -> Standing:
        return self.standings[1]

    def interval(self, standing: Standing) -> tuple[float, float]:
        """The central interval of a forecast at the nominal level: median exp(-/+ z sigma)."""
        z = float(ndtri(0.5 + self.round0.level / 2))
        return standing.median * math.exp(-z * standing.sigma), standing.median * math.exp(z * standing.sigma)

    def flops_spent(self, model: str) -> float:
        return float(sum(f for (m, _), f in self.record.cost.items() if m == model))

    def flops_at_full(self, model: str) -> float:
        """FLOPs of fine-tuning `model` on N: its largest fine-tune's, scaled by the examples."""
        cap = max(self.record.owned[model])
        return self.record.cost[(model, cap)] * self.record.full_size / cap

    def energy_spent(self, model: str) -> float | None:
        from lensllm.curves.cost import selection_energy

        return selection_energy([k for k in self.record.cost if k[0] == model], self.record.energy)

    def last_extended(self, model: str) -> int:
        """The last round that fine-tuned `model` (0: only round 0)."""
        bought = self.record.bought_in()
        return max(bought[(model, s)] for s in self.record.owned[model])


def recommend_rounds(record: RoundsRecord, round0: Recommendation) -> RoundsRecommendation:
    """The recommendation of the rounds (`record`, after its last round) with round 0's forecasts of
    every method (`recommend` on round 0's table)."""
    if not record.last.stopped:
        raise ValueError(f"{record.benchmark}: round {record.last.index} is not the last round (the rounds go on)")
    if round0.benchmark != record.benchmark or round0.budget != record.budget:
        raise ValueError(f"{record.benchmark}: round 0's forecasts are of {round0.benchmark} at {round0.budget}, "
                         f"the rounds of {record.benchmark} from {record.budget}")
    return RoundsRecommendation(record, round0)


def rounds_frame(recommendations: Sequence[RoundsRecommendation]) -> pd.DataFrame:
    """One row per benchmark and candidate of the rounds (method `Race`: the pick rule's rank,
    P(best), the median and interval at N, the largest size fine-tuned (`cap`), the expected loss,
    the last round), then round 0's rows of every method (`recommendation_frame`, cap the budget,
    round 0) (`ROUNDS_COLUMNS`)."""
    rows = []
    for r in recommendations:
        record = r.record
        for rank, s in enumerate(r.standings, start=1):
            low, high = r.interval(s)
            rows.append([record.benchmark, RACE_METHOD, s.model, rank, s.p_best, s.median, low, high, r.round0.level,
                         record.budget, record.full_size, r.flops_spent(s.model), r.energy_spent(s.model),
                         r.flops_at_full(s.model), "", s.cap, s.expected, record.last.index])
        first = recommendation_frame([r.round0])
        first["cap"] = record.budget
        index = {(f.method, m): i for f in r.round0.forecasts for i, m in enumerate(f.models)}
        sigma = {f.method: f.sigma for f in r.round0.forecasts}
        first["expected"] = [None if pd.isna(p) else p * math.exp(sigma[method][index[(method, model)]] ** 2 / 2)
                             for method, model, p in zip(first["method"], first["model"], first["predicted"])]
        first["round"] = 0
        rows += first[ROUNDS_COLUMNS].values.tolist()
    return pd.DataFrame(rows, columns=ROUNDS_COLUMNS)


def _finetunes(bought: Sequence[tuple[str, int]], models: Sequence[str]) -> str:
    """What a round fine-tuned, in words: "all 6 candidates at 16, 32, 64, 128" or "m1 at 256, m2 at 256"."""
    by_model: dict[str, list[int]] = {}
    for model, size in bought:
        by_model.setdefault(model, []).append(size)
    sizes = {tuple(sorted(v)) for v in by_model.values()}
    if len(by_model) == len(models) and len(sizes) == 1 and len(models) > 1:
        return f"all {len(models)} candidates at {', '.join(map(str, sorted(next(iter(sizes)))))}"
    return ", ".join(f"{m} at {', '.join(map(str, sorted(by_model[m])))}" for m in models if m in by_model)


def _budget_words(record: RoundsRecord) -> str:
    if record.flops_budget is None:
        return "no FLOPs budget (select.flops_budget null)"
    split = (f"split equally between the {record.benchmarks} benchmarks: {format_flops(record.cap_flops)} each"
             if record.benchmarks > 1 else "one benchmark")
    return (f"FLOPs budget {format_flops(record.flops_budget)} (select.flops_budget: a total over round 0, every round "
            f"and every benchmark; {split})")


def rounds_markdown(recommendations: Sequence[RoundsRecommendation], title: bool = True) -> str:
    """The rounds' recommendation as Markdown, per benchmark: the pick (lowest expected loss at N)
    and why that rule, P(best), why the rounds stopped; each round's fine-tunes, FLOPs, pick and
    P(best); every candidate's forecast after the last round; round 0's forecasts of every method."""
    out = [RECOMMENDATION_HEADER.rstrip("\n"), ""] if title else []
    for r in recommendations:
        record, pick, last = r.record, r.pick, r.record.last
        percent = f"{r.round0.level:.0%}"
        low, high = r.interval(pick)
        out += [f"## {record.benchmark}: fine-tune **{pick.model}**", ""]
        out.append(
            f"After {last.index} round{'s' if last.index != 1 else ''} beyond round 0 (fine-tunes up to "
            f"{record.budget} examples per candidate, then only the contenders, by doublings), {pick.model} has the "
            f"lowest expected loss at N = {record.full_size:,} examples: {pick.expected:.4f} (median {pick.median:.4f}, "
            f"{percent} interval {low:.4f} - {high:.4f}, from its fine-tunes up to {pick.cap} examples). "
            f"P(best) of {pick.model}: {pick.p_best:.2f} ({certainty_words(pick.p_best)}); runner-up: "
            f"{r.runner_up.model} (expected loss {r.runner_up.expected:.4f}, P(best) {r.runner_up.p_best:.2f})."
        )
        out.append("")
        out.append(f"**Why the rounds stopped:** {last.stopped}.")
        out.append("")
        skipped = getattr(r.round0, "skipped_rows", ())
        if skipped:
            out += [" ".join(f"{n} row{'s' if n != 1 else ''} of {path} {'were' if n != 1 else 'was'} skipped "
                             "(skip_bad_rows)." for path, n in skipped), ""]
        out.append(
            "**The pick rule.** Each candidate's forecast is its AtS line on the sizes it owns, as a log-normal "
            "log L(N) ~ Normal(log median, sigma^2) whose width grows with the extrapolation: the line's error per "
            f"unit of log-horizon measured once on round 0 ({record.calibration.n} backtests), and the curve's bend "
            "(`lensllm.selection.race`). The pick minimises the expected loss E[L] = median x exp(sigma^2 / 2): the regret of a pick "
            "(its loss minus the best's) is linear in its loss, so the risk-neutral choice is the lowest mean; "
            "P(best) favours a wide forecast for its optimistic tail, and the median ignores the width. Ranks "
            f"follow the same rule; P(best) is the confidence, with {record.settings.shared:.0%} of each forecast's "
            "variance one error common to the benchmark (select.shared)."
        )
        out.append("")
        if record.spent <= record.cap_flops:
            within = f"within the {_budget_words(record)}"
        elif record.rounds[0].spent > record.cap_flops:
            within = (f"of the {_budget_words(record)}: round 0 alone spent more than this benchmark's share, so no "
                      "round could be bought")
        else:  # a round's fine-tunes measured more than their plan (FLOPs in proportion to the examples)
            within = (f"above the {_budget_words(record)}: the last round's fine-tunes measured more FLOPs than "
                      "planned from the earlier ones")
        out.append(
            f"**Cost.** This selection spent {format_flops(record.spent)} FLOPs on {record.benchmark} "
            f"({format_flops(record.rounds[0].flops)} in round 0, {format_flops(record.spent - record.rounds[0].flops)} in the "
            f"rounds), {within}. Fine-tuning {pick.model} on all N costs about "
            f"{format_flops(r.flops_at_full(pick.model))} FLOPs."
        )
        out += ["", "| round | fine-tuned | FLOPs | total FLOPs | pick | P(best) of the pick | contenders after it |",
                "|---|---|---|---|---|---|---|"]
        for rnd in record.rounds:
            out.append(f"| {rnd.index} | {_finetunes(rnd.bought, record.models)} ({len(rnd.bought)} fine-tune"
                       f"{'s' if len(rnd.bought) != 1 else ''}) | {format_flops(rnd.flops)} | {format_flops(rnd.spent)} | "
                       f"{rnd.pick.model} | {rnd.pick.p_best:.2f} | {', '.join(rnd.contenders)} |")
        moved = " -> ".join(f"{rnd.pick.p_best:.2f}" for rnd in record.rounds)
        out += ["", f"P(best) of the pick, round by round: {moved}.", ""]
        measured = r.round0.coverage.get("AtS", "not measured")
        out += [
            f"Intervals: nominal {percent}; AtS's intervals from one budget (round 0's, without rounds) {measured}.",
            "",
            f"| rank | model | expected loss at N | P(best) | median at N | {percent} interval | fine-tuned up to | "
            "last round | FLOPs spent | energy spent | FLOPs at N |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for rank, s in enumerate(r.standings, start=1):
            lo, hi = r.interval(s)
            out.append(f"| {rank} | {s.model} | {s.expected:.4f} | {s.p_best:.2f} | {s.median:.4f} | {lo:.4f} - {hi:.4f} | "
                       f"{s.cap} | {r.last_extended(s.model)} | {format_flops(r.flops_spent(s.model))} | "
                       f"{format_joules(r.energy_spent(s.model))} | {format_flops(r.flops_at_full(s.model))} |")
        first = recommendation_markdown([r.round0], title=False)
        table = first[first.index("\n| model | ") + 1:]
        out += ["", f"Round 0's forecasts of every method (fine-tunes up to {record.budget} examples per candidate, "
                "as without rounds; median, interval, P(best)), and the coverage each method's nominal "
                f"{percent} intervals reached on the published curves:", "", table.rstrip("\n"), ""]
    return "\n".join(out) + "\n"


def rounds_total_markdown(frame: pd.DataFrame, flops_budget: float | None) -> str:
    """One sentence for recommendation.md above the benchmarks when rounds ran on more than one:
    the FLOPs spent on all of them together against the FLOPs budget (a total)."""
    race = frame[frame["method"] == RACE_METHOD]
    benchmarks = race["benchmark"].nunique()
    if benchmarks < 2:
        return ""
    spent = float(race["flops_spent"].sum())
    of = "" if flops_budget is None else f" of the FLOPs budget {format_flops(flops_budget)} (a total, split equally)"
    return f"The rounds on the {benchmarks} benchmarks spent {format_flops(spent)} FLOPs in all{of}.\n\n"
