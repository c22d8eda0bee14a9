"""Select mode: which candidate to fine-tune on data of size N, from fine-tunes up to a budget.

Each predicting method (`lensllm.selection.uncertainty.PREDICTING`) forecasts every candidate's test loss at
N from its curve up to the budget b: a median, an interval at the nominal level (80%), and
P(best), the probability that the candidate has the lowest loss at N (`lensllm.selection.uncertainty`).
The pick is the candidate with the largest P(best) under `pick_method`; the runner-up the next.

Cost, per candidate: `flops_spent` is the sum of the measured FLOPs of its fine-tunes (sizes up
to b); `flops_at_full`, the estimated FLOPs of fine-tuning it on N examples, scales its measured
fine-tune at b linearly in the examples: FLOPs(b) * N / b (same epochs, same example lengths).
`energy_spent` is the joules of those fine-tunes as their jobs measured them (NVML, RAPL), empty
unless every one of them was measured.

When P(best) of the pick is below `settle_p_best`, the recommendation names the next step that
would settle it: the contenders (the fewest candidates, by P(best), holding 95% of it, at least
two) are fine-tuned at the next size 2b (the training subsets are nested, so the smaller ones are
reused), at a cost of sum FLOPs(b) * 2 over the contenders; the workflow is then rerun with
`select.budget` = 2b.

Every interval is printed beside the coverage its method reached on the published curves (paper
mode's `calibration.tsv`, averaged over the budgets, per benchmark), so that "80%" is read as
what it has been measured to be.

**Rounds** (select.max_rounds > 0): after round 0 (the fine-tunes up to the budget) the contenders
are extended by doublings of their largest size, round by round, within select.flops_budget (a
total over round 0, every round and every benchmark, split equally between the benchmarks), until
the pick's P(best) >= settle_p_best, select.max_rounds or nothing more fits
(`lensllm.selection.race`). A job per (benchmark, round) advances a `RoundsRecord`
(`start_rounds`, `continue_rounds`) and writes it (`write_rounds`); the pick is then the candidate of
lowest expected loss at N after the last round, P(best) its confidence (`recommend_rounds`,
`rounds_markdown`, `rounds_frame`), with round 0's forecasts of every method beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from lensllm.curves.losstable import LossTable
from lensllm.selection.registry import ModelTerms, SelectionSettings
from lensllm.selection.uncertainty import Forecast, UncertaintySettings, forecast

RECOMMENDATION_COLUMNS = ["benchmark", "method", "model", "rank", "p_best", "predicted", "low", "high", "level",
                          "budget", "full_size", "flops_spent", "energy_spent", "flops_at_full", "excluded"]
CONTENDER_MASS = 0.95
RECOMMENDATION_HEADER = "# Recommendation\n\n"


@dataclass(frozen=True)
class NextStep:
    """Fine-tune `models` at `size` (FLOPs `flops` in all), then rerun with select.budget = size."""

    models: tuple[str, ...]
    size: int
    flops: float


@dataclass(frozen=True)
class Recommendation:
    """The verdict on one benchmark: every method's forecasts, the pick of `pick_method`, its runner-up,
    the FLOPs per candidate, the measured coverage of each method's intervals, and the next step."""

    benchmark: str
    budget: int
    full_size: int
    level: float
    pick_method: str
    forecasts: tuple[Forecast, ...]
    flops_spent: Mapping[str, float]
    flops_at_full: Mapping[str, float]
    coverage: Mapping[str, str]
    settle_p_best: float
    flops_budget: float | None = None
    energy_spent: Mapping[str, float | None] = field(default_factory=dict)
    skipped_rows: tuple[tuple[str, int], ...] = ()  # (user file, rows skipped): Benchmark.skipped_rows

    def forecast_of(self, method: str) -> Forecast:
        """The forecast of `method`."""
        return next(f for f in self.forecasts if f.method == method)

    def ranking(self, method: str | None = None) -> list[tuple[str, float]]:
        """(model, P(best)) under `method` (default the pick method), best first; P(best) equal to 4
        decimals (all but nothing, say) ranks by the median."""
        f = self.forecast_of(method or self.pick_method)
        p = f.p_best()
        order = sorted(range(len(f.models)), key=lambda i: (-round(float(p[i]), 4), f.median[i]))
        return [(f.models[i], float(p[i])) for i in order]

    @property
    def pick(self) -> str:
        return self.ranking()[0][0]

    @property
    def runner_up(self) -> str:
        return self.ranking()[1][0]

    @property
    def p_best_pick(self) -> float:
        return self.ranking()[0][1]

    def next_step(self) -> NextStep | None:
        """The fine-tunes that would settle the pick, or None when P(best) >= settle_p_best."""
        if self.p_best_pick >= self.settle_p_best:
            return None
        contenders, mass = [], 0.0
        for model, p in self.ranking():
            contenders.append(model)
            mass += p
            if mass >= CONTENDER_MASS and len(contenders) >= 2:
                break
        size = 2 * self.budget
        return NextStep(tuple(contenders), size, sum(self.flops_at_full[m] * size / self.full_size for m in contenders))


def recommend(
    table: LossTable,
    flops: Mapping[tuple[str, int], float],
    full_size: int,
    budget: int,
    methods: Sequence[str],
    pick_method: str,
    settings: SelectionSettings | None = None,
    uncertainty: UncertaintySettings | None = None,
    settle_p_best: float = 0.8,
    coverage: Mapping[str, str] | None = None,
    terms: ModelTerms | None = None,
    flops_budget: float | None = None,
    energy: Mapping[tuple[str, int], float | None] | None = None,
) -> Recommendation:
    """Forecast every candidate's loss at `full_size` with each method from the table's columns up to
    `budget` (nothing above it is read) and make the recommendation. `flops[(model, size)]` are the
    measured FLOPs of the fine-tunes; `coverage[method]` the measured coverage text of its intervals;
    `flops_budget` the FLOPs budget that chose `budget`, if one did; `energy[(model, size)]` the
    measured joules of the fine-tunes (None where not measured)."""
    if pick_method not in methods:
        raise ValueError(f"key 'select.pick_method': {pick_method} is not one of select.methods {list(methods)}")
    if len(table.models) < 2:
        raise ValueError(f"{table.benchmark}: choosing needs at least two candidates, the loss table has {list(table.models)}")
    uncertainty = uncertainty or UncertaintySettings()
    forecasts = tuple(forecast(m, table, [budget], full_size, settings, terms, uncertainty)[0] for m in methods)
    pick = next(f for f in forecasts if f.method == pick_method)
    if len(pick.models) < 2:
        raise ValueError(f"{table.benchmark}: {pick_method} forecast fewer than two candidates at budget {budget} "
                         f"(left out: {list(pick.excluded)}); choose another select.pick_method or a larger budget")
    missing = [m for m in table.models if (m, budget) not in flops]
    if missing:
        raise ValueError(f"{table.benchmark}: no measured FLOPs of the fine-tune at {budget} for {missing}")
    spent = {m: float(sum(f for (model, size), f in flops.items() if model == m and size <= budget)) for m in table.models}
    at_full = {m: float(flops[(m, budget)] * full_size / budget) for m in table.models}
    from lensllm.curves.cost import selection_energy

    spent_energy = {m: selection_energy([(model, size) for model, size in flops if model == m and size <= budget],
                                        energy or {}) for m in table.models}
    return Recommendation(table.benchmark, budget, full_size, uncertainty.level, pick_method, forecasts, spent, at_full,
                          dict(coverage or {}), settle_p_best, flops_budget, spent_energy)


def recommendation_frame(recommendations: Sequence[Recommendation]) -> pd.DataFrame:
    """One row per benchmark, method and candidate (`RECOMMENDATION_COLUMNS`), best first."""
    rows = []
    for r in recommendations:
        for f in r.forecasts:
            low, high = f.interval(r.level)
            index = {m: i for i, m in enumerate(f.models)}
            for rank, (model, p) in enumerate(r.ranking(f.method), start=1):
                i = index[model]
                rows.append([r.benchmark, f.method, model, rank, p, f.median[i], low[i], high[i], r.level, r.budget,
                             r.full_size, r.flops_spent[model], r.energy_spent.get(model), r.flops_at_full[model], ""])
            for model, why in f.excluded:
                rows.append([r.benchmark, f.method, model, None, None, None, None, None, r.level, r.budget, r.full_size,
                             r.flops_spent.get(model), r.energy_spent.get(model), r.flops_at_full.get(model), why])
    return pd.DataFrame(rows, columns=RECOMMENDATION_COLUMNS)


def format_flops(value: float) -> str:
    return f"{value:.2e}"


def format_joules(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.3g} J"


def certainty_words(p: float) -> str:
    if p >= 0.95:
        return "nearly certain"
    if p >= 0.8:
        return "confident"
    if p >= 0.5:
        return "more likely than not, but not settled"
    return "not settled: the candidates cannot be told apart yet"


def recommendation_markdown(recommendations: Sequence[Recommendation], title: bool = True) -> str:
    """The recommendation as Markdown: per benchmark the pick, the runner-up, how sure, the next step,
    and a table of every candidate under the pick method, then every method's median and interval."""
    out = [RECOMMENDATION_HEADER.rstrip("\n"), ""] if title else []
    for r in recommendations:
        pick = r.forecast_of(r.pick_method)
        percent = f"{r.level:.0%}"
        out += [f"## {r.benchmark}: fine-tune **{r.pick}**", ""]
        out.append(
            f"Predicted from fine-tunes up to {r.budget} examples per candidate, for N = {r.full_size:,} examples "
            f"({r.full_size / r.budget:.0f}x the budget), by {r.pick_method}. "
            f"P(best) of {r.pick}: {r.p_best_pick:.2f} ({certainty_words(r.p_best_pick)}); "
            f"runner-up: {r.runner_up} (P(best) {dict(r.ranking())[r.runner_up]:.2f}). "
            f"Fine-tuning {r.pick} on all N costs about {format_flops(r.flops_at_full[r.pick])} FLOPs; "
            f"this selection spent {format_flops(sum(r.flops_spent.values()))} on all {len(r.flops_spent)} candidates."
        )
        out.append("")
        if r.skipped_rows:
            out += [" ".join(f"{n} row{'s' if n != 1 else ''} of {path} {'were' if n != 1 else 'was'} skipped "
                             "(skip_bad_rows)." for path, n in r.skipped_rows), ""]
        step = r.next_step()
        if step is None:
            out.append(f"P(best) of the pick is at least {r.settle_p_best:.2f}: no further fine-tune is needed to decide.")
        else:
            rerun = (f"`select.budget: {step.size}`" if r.flops_budget is None else
                     f"a `select.flops_budget` that buys {step.size} (at least {format_flops(r.flops_budget + step.flops)})")
            others = [m for m in r.flops_spent if m not in step.models]
            out.append(
                f"**To settle it:** fine-tune {', '.join(step.models)} at {step.size} examples "
                f"(about {format_flops(step.flops)} FLOPs, {step.flops / max(sum(r.flops_spent.values()), 1e-300):.1f}x "
                f"what this selection spent), then rerun with {rerun}"
                + (f" and only these candidates ({', '.join(others)} hold less than {1 - CONTENDER_MASS:.0%} of P(best))."
                   if others else ".")
            )
        out.append("")
        measured = r.coverage.get(r.pick_method, "not measured")
        out += [
            f"Intervals: nominal {percent}, {measured}.",
            "",
            f"| rank | model | P(best) | predicted loss at N | {percent} interval | FLOPs spent | energy spent | FLOPs at N |",
            "|---|---|---|---|---|---|---|---|",
        ]
        low, high = pick.interval(r.level)
        index = {m: i for i, m in enumerate(pick.models)}
        for rank, (model, p) in enumerate(r.ranking(), start=1):
            i = index[model]
            out.append(f"| {rank} | {model} | {p:.2f} | {pick.median[i]:.4f} | {low[i]:.4f} - {high[i]:.4f} | "
                       f"{format_flops(r.flops_spent[model])} | {format_joules(r.energy_spent.get(model))} | "
                       f"{format_flops(r.flops_at_full[model])} |")
        for model, why in pick.excluded:
            out.append(f"| - | {model} | - | left out: {why} | | {format_flops(r.flops_spent[model])} | "
                       f"{format_joules(r.energy_spent.get(model))} | {format_flops(r.flops_at_full[model])} |")
        out += ["", "Every method's predicted loss at N (median, interval, P(best)), and the coverage its "
                f"nominal {percent} intervals reached on the published curves:", ""]
        methods = [f.method for f in r.forecasts]
        out.append("| model | " + " | ".join(methods) + " |")
        out.append("|---|" + "---|" * len(methods))
        for model in sorted(r.flops_spent):
            cells = []
            for f in r.forecasts:
                if model not in f.models:
                    cells.append("left out")
                    continue
                i = f.models.index(model)
                lo, hi = (float(v[i]) for v in f.interval(r.level))
                cells.append(f"{f.median[i]:.4f} [{lo:.4f}, {hi:.4f}] p={f.p_best()[i]:.2f}")
            out.append(f"| {model} | " + " | ".join(cells) + " |")
        out.append("| measured coverage | " + " | ".join(r.coverage.get(m, "not measured") for m in methods) + " |")
        out.append("")
    return "\n".join(out) + "\n"


def read_coverage(path: str | os.PathLike, level: float) -> dict[str, str]:
    """Each method's measured coverage as text ("covered 78% on flan, 95% on gigaword (published curves)"),
    from a table with columns benchmark, method, level, coverage (the mean over the budgets)."""
    frame = pd.read_csv(path, sep="\t")
    missing = {"benchmark", "method", "level", "coverage"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    frame = frame[np.isclose(frame["level"], level)]
    return {
        method: "covered " + ", ".join(f"{c:.0%} on {b}" for b, c in zip(rows["benchmark"], rows["coverage"]))
        + " (published curves)"
        for method, rows in frame.groupby("method", sort=False)
    }
