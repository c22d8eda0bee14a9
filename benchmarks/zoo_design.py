"""Choose the default zoo from a pool of candidate designs fine-tuned on the grid (docs/grid.md, "How the zoo was chosen").

A pool run fine-tunes more candidate designs than the zoo keeps (a zoo TSV of its own, the grid's
benchmarks and sizes). This script scores every subset of `--size` pool models by the properties the
default grid must show (issue 21), read from the pool's loss tables; no subset sees anything but the
grid's curves:

1. on every benchmark the zero-shot best is not the target best; ZeroShot PearCorr <= 50 on >= 2;
2. on >= 2 benchmarks the best at target/8 is not the target best (the leading curves cross late);
3. on >= 1 benchmark >= `--ties` other candidates end within 2% of the best target loss;
4. AtS's RelAcc at target/8 >= 95 on >= 2 benchmarks, and some curve-fitting selector beats
   SubTuning's RelAcc at some budget.

Each selector's score of a model depends on that model's curve only, so the selectors run once on the
whole pool and every subset is scored by indexing. Subsets that hold 1-4 are ranked by their fine-tuning
seconds in the pool run (`benchmarks/finetune_model`, the cost of `make run`), then by mean ZeroShot
PearCorr; `lead_%` is the smallest lead of a target best over its runner-up (the properties of a design
with a larger lead survive another CPU's float noise). `--items` keeps only some of 1-4; `--architectures` asks for a subset with exactly these
architectures (the quick zoo: one each of gpt2, llama and t5). Seconds:

    .venv/bin/python benchmarks/zoo_design.py results/zoo-pool --size 7 --ties 3
    .venv/bin/python benchmarks/zoo_design.py results/zoo-pool-quick --zoo benchmarks/zoo_pool_quick.tsv \
        --size 3 --items 1 2 --architectures gpt2 llama t5 --ratios 2 4 8
"""
import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from lensllm.curves.difficulty import difficulty
from lensllm.curves.losstable import LossTable, read_losstable
from lensllm.curves.metrics import pearcorr, relacc
from lensllm.selection import SelectionSettings, run_selector

FITTERS = ("AtS", "RectifiedFit", "VanillaFit")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("pool", help="the results directory of the pool run (losses/<benchmark>.tsv)")
parser.add_argument("--benchmarks", nargs="+", default=["wiki", "debsum", "instruct"])
parser.add_argument("--size", type=int, default=6, help="models in the zoo")
parser.add_argument("--ratios", type=int, nargs="+", default=[2, 4, 8, 16, 32])
parser.add_argument("--ties", type=int, default=2, help="item 3: other candidates within 2%% of the best")
parser.add_argument("--max-seconds", type=float, help="keep subsets whose fine-tunes took at most this long in the pool run")
parser.add_argument("--require", nargs="*", default=[], help="models every subset keeps")
parser.add_argument("--items", type=int, nargs="+", default=[1, 2, 3, 4], help="the items a subset must hold")
parser.add_argument("--zoo", default="benchmarks/zoo_pool.tsv", help="the pool's zoo sheet (for --architectures)")
parser.add_argument("--architectures", nargs="+", help="the subset's architectures, as a multiset")
parser.add_argument("--top", type=int, default=10)
args = parser.parse_args()

pool = Path(args.pool)
tables = {b: read_losstable(pool / "losses" / f"{b}.tsv", b) for b in args.benchmarks}
models = tables[args.benchmarks[0]].models
target = max(tables[args.benchmarks[0]].sizes)
budgets = [target // r for r in args.ratios]
eighth = target // 8
if eighth not in budgets:
    parser.error("--ratios must include 8 (item 4 reads AtS at target / 8)")


def seconds(model: str) -> float:
    return sum(float(pd.read_csv(pool / "benchmarks" / "finetune_model" / b / f"{model}.tsv", sep="\t")["s"].iloc[0]) for b in args.benchmarks)


cost = {m: seconds(m) for m in models}
architecture = dict(pd.read_csv(args.zoo, sep="\t")[["name", "architecture"]].itertuples(index=False))
# scores[(benchmark, method, budget)] = one score per pool model (lower = better)
# (a model whose fit failed is left out by the selector: it scores +inf, never picked)
scores = {
    (b, method, s.budget): np.array([dict(zip(s.models, s.scores)).get(m, np.inf) for m in models], float)
    for b, t in tables.items()
    for method in FITTERS + ("SubTuning",)
    for s in run_selector(method, t, budgets, target, SelectionSettings())
}


def subtable(t: LossTable, rows: list[int]) -> LossTable:
    return LossTable(t.benchmark, tuple(t.models[i] for i in rows), t.sizes, t.losses[rows], t.params[rows], tuple(t.families[i] for i in rows))


def assess(subset: tuple[str, ...]) -> dict | None:
    rows = [models.index(m) for m in subset]
    found = [difficulty(subtable(t, rows)) for t in tables.values()]
    item1 = all(d.zero_shot_misleads for d in found) and sum(d.zero_shot_pearcorr <= 50 for d in found) >= 2
    item2 = sum(d.crosses_late for d in found) >= 2
    item3 = any(len(d.near_ties) >= args.ties for d in found)
    if not all({1: item1, 2: item2, 3: item3}[i] for i in args.items if i < 4):
        return None
    rel = {}
    for b, t in tables.items():
        final = t.column(target)[rows]
        for key in FITTERS + ("SubTuning",):
            for budget in budgets:
                pick = int(np.argmin(scores[(b, key, budget)][rows]))
                rel[(b, key, budget)] = relacc(final[pick], final)
    ats_ok = sum(rel[(b, "AtS", eighth)] >= 95 for b in tables) >= 2
    beats = any(rel[(b, f, budget)] > rel[(b, "SubTuning", budget)] for b in tables for f in FITTERS for budget in budgets)
    if 4 in args.items and not (ats_ok and beats):
        return None
    return {
        "models": ", ".join(subset),
        "seconds": round(sum(cost[m] for m in subset)),
        "zeroshot_pearcorr": " / ".join(f"{d.zero_shot_pearcorr:.0f}" for d in found),
        "mean_zs": float(np.mean([d.zero_shot_pearcorr for d in found])),
        "late": sum(d.crosses_late for d in found),
        "ties": " / ".join(str(len(d.near_ties)) for d in found),
        # how far the target best leads the runner-up, in % (the smallest over the benchmarks): a lead
        # of a few hundredths of a nat could go to the runner-up on another CPU
        "lead_%": round(min(100 * (np.sort(t.column(target)[rows])[1] / np.sort(t.column(target)[rows])[0] - 1)
                            for t in tables.values()), 2),
        "ats_1/8": " / ".join(f"{rel[(b, 'AtS', eighth)]:.0f}" for b in tables),
        "ats_mean": round(float(np.mean([v for (b, k, _), v in rel.items() if k == "AtS"])), 1),
        "subtuning_mean": round(float(np.mean([v for (b, k, _), v in rel.items() if k == "SubTuning"])), 1),
    }


found = []
for subset in itertools.combinations(models, args.size):
    if not set(args.require) <= set(subset):
        continue
    if args.max_seconds and sum(cost[m] for m in subset) > args.max_seconds:
        continue
    if args.architectures and sorted(architecture[m] for m in subset) != sorted(args.architectures):
        continue
    row = assess(subset)
    if row:
        found.append(row)
print(f"{len(found)} of {sum(1 for _ in itertools.combinations(models, args.size))} subsets of {args.size} hold items "
      f"{', '.join(map(str, args.items))} "
      f"({', '.join(args.benchmarks)}; target {target}; budgets {budgets})")
if found:
    frame = pd.DataFrame(found).sort_values(["seconds", "mean_zs"]).drop(columns="mean_zs")
    print(frame.head(args.top).to_string(index=False))
