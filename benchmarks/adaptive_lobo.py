"""How Adaptive's settings were chosen, leave one benchmark out, and what each idea moved.

For every benchmark E evaluated, each setting of the grid below is scored on the OTHER benchmarks
only (the other published benchmark, and the offline grid's benchmarks when their results are
given): the sum of the mean PearCorr and the mean RelAcc over their budgets. The best setting is
then run on E. The script prints (and writes as Markdown):

1. the choice: for each E, the top settings on the other benchmarks;
2. the ablation on every cell: AtS; the prior alone (every size up to the budget, the forecast
   moved by the prior learned on the other benchmark(s) of the same kind); the allocation alone
   (round 0 up to b / 2, purchases up to 2 b, contention 0); the allocation with P(best)
   (contention 1); all three; and the LOBO choice; with PearCorr / RelAcc, and the LOBO choice's
   FLOPs as a share of AtS's.

Run: python benchmarks/adaptive_lobo.py [--curves ../shared/data/published] [--grid results/default]
         [--out results/benchmarks/adaptive_lobo.md]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import yaml

from lensllm.curves.budgets import budgets_for
from lensllm.curves.cost import CostModel, analytic_flops, read_flops, selection_flops
from lensllm.curves.losstable import read_losstable
from lensllm.curves.metrics import pearcorr, relacc
from lensllm.selection import ModelTerms, SelectionSettings, run_selector

ROOT = Path(__file__).resolve().parents[1]
GRID = {"adaptive_first_round": [2, 4], "adaptive_reach": [1, 2], "adaptive_contention": [0.0, 1.0, 3.0]}


def cases(curves: Path, grid: Path | None):
    """(benchmark, table, FLOPs table, target, ratios) of the published curves and the grid."""
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    for name in ("flan", "gigaword"):
        table = read_losstable(curves / f"{name}.csv", name)
        cost = paper["cost"][name]
        flops = analytic_flops(table.models, table.params, table.sizes,
                               CostModel(cost["tokens_per_example"], cost["epochs"], cost["runs_per_size"]))
        yield name, table, flops, paper["target"], paper["ratios"]
    if grid is not None:
        config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
        for name in config["benchmarks"]:
            table = read_losstable(grid / "losses" / f"{name}.tsv", name)
            yield f"grid:{name}", table, read_flops(grid / "finetune_flops" / f"{name}.tsv"), config["target"], config["ratios"]


def cells(case, settings: SelectionSettings, library=()) -> list[dict]:
    """AtS and Adaptive at every budget of one benchmark: PearCorr, RelAcc, FLOPs / AtS's."""
    name, table, flops, target, ratios = case
    budgets = budgets_for(target, ratios)
    truth = table.column(target)
    ats = run_selector("AtS", table, list(budgets.values()), target, settings)
    ours = run_selector("Adaptive", table, list(budgets.values()), target, settings,
                        ModelTerms(flops=flops, library=tuple(library)))
    rows = []
    for ratio, a, d in zip(budgets, ats, ours):
        rows.append({
            "benchmark": name, "ratio": ratio,
            "ats": (pearcorr(a.scores, truth), relacc(truth[table.models.index(a.selected())], truth)),
            "adaptive": (pearcorr(d.scores, truth), relacc(truth[table.models.index(d.selected())], truth)),
            "flops": selection_flops(d.finetunes, flops) / selection_flops(a.finetunes, flops),
        })
    return rows


def score(rows: list[dict]) -> float:
    """Mean PearCorr + mean RelAcc of Adaptive over the rows."""
    return float(np.mean([r["adaptive"][0] for r in rows]) + np.mean([r["adaptive"][1] for r in rows]))


# The ablation's variants (fixed, whatever the config says): each idea alone and together.
ABLATION = {
    "prior alone": {"adaptive_first_round": 1, "adaptive_reach": 1, "adaptive_contention": 0.0, "adaptive_prior": True},
    "allocation alone": {"adaptive_first_round": 2, "adaptive_reach": 2, "adaptive_contention": 0.0},
    "allocation + P(best)": {"adaptive_first_round": 2, "adaptive_reach": 2, "adaptive_contention": 1.0},
    "allocation + P(best) + prior": {"adaptive_first_round": 2, "adaptive_reach": 2, "adaptive_contention": 1.0,
                                     "adaptive_prior": True},
}


def cell(value) -> str:
    return f"{value[0]:.1f} / {value[1]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=Path, default=ROOT.parent / "shared/data/published")
    parser.add_argument("--grid", type=Path, default=None, help="a finished grid run (results/default)")
    parser.add_argument("--out", type=Path, default=ROOT / "results/benchmarks/adaptive_lobo.md")
    args = parser.parse_args()
    base = yaml.safe_load((ROOT / "config/paper.yaml").read_text())["selection"]
    base = {k: v for k, v in base.items() if not k.startswith("adaptive_")}
    all_cases = list(cases(args.curves, args.grid))
    names = [c[0] for c in all_cases]
    settings = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    results = [{c[0]: cells(c, SelectionSettings(**(base | s))) for c in all_cases} for s in settings]

    lines = ["# Adaptive: settings chosen leave one benchmark out", "",
             "Score of a setting on a benchmark: mean PearCorr + mean RelAcc over its budgets; a setting is",
             "chosen by its mean score over the other benchmarks.", "",
             "| evaluated | chosen on | best three settings (first_round, reach, contention: score) |", "|---|---|---|"]
    chosen = {}
    for evaluated in ("flan", "gigaword"):
        others = [n for n in names if n != evaluated]
        on_others = [np.mean([score(r[o]) for o in others]) for r in results]
        ranked = sorted(range(len(settings)), key=lambda i: -on_others[i])
        chosen[evaluated] = ranked[0]
        top = "; ".join(f"{tuple(settings[i].values())}: {on_others[i]:.2f}" for i in ranked[:3])
        lines.append(f"| {evaluated} | {', '.join(others)} | {top} |")

    # the ablation: its variants on every cell, the prior learned on the other benchmarks of the
    # same kind (published / grid), never the one evaluated
    library = {c[0]: [o[1] for o in all_cases if o[0] != c[0] and o[0].startswith("grid:") == c[0].startswith("grid:")]
               for c in all_cases}
    variants = {label: {c[0]: cells(c, SelectionSettings(**(base | knobs)), library[c[0]]) for c in all_cases}
                for label, knobs in ABLATION.items()}
    columns = ["AtS", *ABLATION, "LOBO choice"]
    lines += ["", "Per cell (PearCorr / RelAcc, x100), and the FLOPs of the LOBO choice as a share of AtS's:", "",
              "| benchmark | ratio | " + " | ".join(columns) + " | FLOPs / AtS |", "|---" * (len(columns) + 3) + "|"]
    means = {label: [] for label in columns}
    for name in names:
        choice = results[chosen[name]][name] if name in chosen else None
        for j, row in enumerate(variants["allocation alone"][name]):
            values = {"AtS": row["ats"], **{label: variants[label][name][j]["adaptive"] for label in ABLATION},
                      "LOBO choice": choice[j]["adaptive"] if choice else None}
            if choice:
                for label in columns:
                    means[label].append(values[label])
            flops = f"{choice[j]['flops']:.3f}" if choice else ""
            lines.append(f"| {name} | 1/{row['ratio']} | " + " | ".join("" if values[c] is None else cell(values[c]) for c in columns)
                         + f" | {flops} |")
    lines += ["", "Over the 14 published cells (PearCorr / RelAcc; PearCorr at 1/128-1/512; worst RelAcc):", ""]
    small = [i for i, r in enumerate(row["ratio"] for name in ("flan", "gigaword") for row in variants["allocation alone"][name])
             if r >= 128]
    for label in columns:
        p, r = [v[0] for v in means[label]], [v[1] for v in means[label]]
        lines.append(f"- {label}: {np.mean(p):.1f} / {np.mean(r):.1f}; {np.mean([p[i] for i in small]):.1f}; {min(r):.1f}")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
