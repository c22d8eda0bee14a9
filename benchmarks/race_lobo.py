"""Race's settings, leave one benchmark out (docs/paper-mode.md, "Race against AtS").

For each published benchmark (FLAN, Gigaword): the setting (first, contenders, margin) is chosen on the
other one and the offline grid's three benchmarks (wiki, debsum, instruct, from a `make run`) by (mean
RelAcc over their cells, worst cell, then the cheaper: larger first, fewer contenders, smaller margin),
and evaluated on it. The config's setting: chosen the same way on all five. No reach: AtS's compute alone
bounds the rounds (`--reach R` scores the grid with contenders stopped at R x b). About 3 minutes on 2 cores.

    .venv/bin/python benchmarks/race_lobo.py --curves-dir ../shared/data/published --grid-dir results/default
"""
import argparse
import itertools

import numpy as np

from lensllm.curves.losstable import read_losstable
from lensllm.curves.cost import read_flops
from lensllm.selection import RaceSettings, SelectionSettings, run_selector
from lensllm.selection.race import race_on_table

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--curves-dir", required=True, help="a directory with flan.csv and gigaword.csv")
parser.add_argument("--grid-dir", required=True, help="the results of a run of the offline default (results/default)")
parser.add_argument("--reach", type=int, default=None, help="stop the contenders at this x the budget (default: none)")
args = parser.parse_args()
# Tokens per example of the published benchmarks, x 20 epochs x 15 runs (config/paper.yaml `cost`).
COST = {"flan": 35, "gigaword": 44}
setups = {}
for n in COST:
    t = read_losstable(f"{args.curves_dir}/{n}.csv", n)
    setups[n] = (t, {(m, s): 6 * p * COST[n] * 300 * s for m, p in zip(t.models, t.params) for s in t.sizes if s > 0}, 1638400, [8, 16, 32, 64, 128, 256, 512])
for n in ("wiki", "debsum", "instruct"):
    t = read_losstable(f"{args.grid_dir}/losses/{n}.tsv", n)
    setups[n] = (t, read_flops(f"{args.grid_dir}/finetune_flops/{n}.tsv"), 512, [2, 4, 8, 16, 32])
ATS = {}
for n, (t, f, target, ratios) in setups.items():
    for r in ratios:
        a = run_selector("AtS", t, [target // r], target, SelectionSettings())[0]
        ATS[(n, r)] = (sum(f[x] for x in a.finetunes if x[1] > 0), a.selected())


def evaluate(n, st):
    t, f, target, ratios = setups[n]
    truth = dict(zip(t.models, t.column(target)))
    best = min(truth, key=truth.get)
    lo, hi = min(truth.values()), max(truth.values())
    out = []
    for r in ratios:
        rounds, bought = race_on_table(t, target // r, target, f, 3, 5.0, st)
        pick = rounds[-1].pick
        out.append(dict(r=r, relacc=100 * (hi - truth[pick.model]) / (hi - lo), frac=sum(f[b] for b in bought) / ATS[(n, r)][0],
                        ats=100 * (hi - truth[ATS[(n, r)][1]]) / (hi - lo), rounds=len(rounds) - 1, correct=pick.model == best,
                        log_mu=[np.log(x.median) for x in rounds[-1].standings], sigma=[x.sigma for x in rounds[-1].standings],
                        models=[x.model for x in rounds[-1].standings], best=best))
    return out


if __name__ == "__main__":
    grid = [RaceSettings(first=a, contenders=q, reach=args.reach, margin=g) for a, q, g in itertools.product([2, 4, 8], [2, 3, 4], [0.05, 0.2, 1.0])]
    res = {(n, i): evaluate(n, s) for i, s in enumerate(grid) for n in setups}
    def key(names):
        def k(i):
            cells = [x['relacc'] for n in names for x in res[(n, i)]]
            s = grid[i]
            return (round(np.mean(cells), 6), round(min(cells), 6), s.first, -s.contenders, -s.margin)
        return k
    held = []
    for h in ("flan", "gigaword"):
        others = [n for n in setups if n != h]
        i = max(range(len(grid)), key=key(others)); s = grid[i]; ev = res[(h, i)]; held += ev
        print(f"held out {h}: chosen on {others}: first={s.first} contenders={s.contenders} margin={s.margin} -> "
              f"RelAcc {[round(float(x['relacc']), 1) for x in ev]} (AtS {[round(float(x['ats']), 1) for x in ev]}) mean {np.mean([x['relacc'] for x in ev]):.1f} "
              f"worst {min(x['relacc'] for x in ev):.1f}, FLOPs/AtS {[round(float(x['frac']), 2) for x in ev]}")
    print(f"14 held-out cells: mean {np.mean([x['relacc'] for x in held]):.2f}, worst {min(x['relacc'] for x in held):.1f}")
    i = max(range(len(grid)), key=key(list(setups))); s = grid[i]
    print(f"on all five: first={s.first} contenders={s.contenders} margin={s.margin}")
    for n in setups:
        ev = res[(n, i)]
        print(f"  {n}: RelAcc {[round(float(x['relacc']), 1) for x in ev]} mean {np.mean([x['relacc'] for x in ev]):.1f} (AtS mean {np.mean([x['ats'] for x in ev]):.1f}), FLOPs/AtS max {max(x['frac'] for x in ev):.2f}")
