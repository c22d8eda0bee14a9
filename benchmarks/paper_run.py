"""Benchmark the paper mode: the whole run, its fitting and selection part, and the batched fit.

    python benchmarks/paper_run.py [--curves-dir ../shared/data/published] [--benchmarks flan gigaword]

Measures, in one run on this machine:
1. the wall time of the whole paper workflow (`snakemake --cores 2`, fresh directory: copy the
   curves, fit, select at 7 budgets, score, tables, figures);
2. the wall time of the fitting and selection part alone (in process, one core), every selector
   that runs on published curves (those needing model weights run on our grid only);
3. the batched Levenberg-Marquardt of `lensllm.curves.fitting` against a baseline: SciPy's
   `least_squares` (trf, finite-difference Jacobian) run curve by curve from the same starts, on
   the RectifiedFit problems of every model at every budget; reported as a speed ratio, with the
   difference of the objectives reached.
Results go to stdout and to --out (default results/benchmarks/paper_run.tsv).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from lensllm.selection.evaluation import fit_all_laws, run_selectors, score_selections
from lensllm.curves.cost import CostModel, analytic_flops
from lensllm.curves.fitting import _starts, fit_curves
from lensllm.curves.laws import RECTIFIED
from lensllm.curves.losstable import read_losstable
from lensllm.selection import ModelTerms, SelectionSettings, curve_selectors

REPO = Path(__file__).resolve().parents[1]
TARGET = 1_638_400
RATIOS = [8, 16, 32, 64, 128, 256, 512]


def whole_run(curves_dir: Path, benchmarks: list[str]) -> float:
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", workdir, "--cores", "2", "--quiet",
             "--configfile", str(REPO / "config" / "paper.yaml"), "--config", f"curves_dir={curves_dir}",
             "benchmarks=[" + ",".join(f'"{b}"' for b in benchmarks) + "]"],
            check=True, capture_output=True,
        )
        return time.perf_counter() - start


def fit_and_select(tables) -> float:
    start = time.perf_counter()
    for table in tables:
        fit_all_laws(table, ["rectified", "lensllm", "vanilla"])
        flops = analytic_flops(table.models, table.params, table.sizes, CostModel(35, 20, 15))
        selections = run_selectors(table, curve_selectors(), TARGET, RATIOS, SelectionSettings(), ModelTerms(flops=flops))
        score_selections(selections, table, flops)
    return time.perf_counter() - start


def batched_vs_scipy(table) -> tuple[float, float, float]:
    curves = [(0, *table.train_sizes(TARGET // r)) for r in RATIOS for _ in table.models]
    losses = [table.curve(m, sizes) for sizes, m in zip(curves, [m for _ in RATIOS for m in table.models])]
    start = time.perf_counter()
    ours = fit_curves(RECTIFIED, curves, losses)
    batched = time.perf_counter() - start

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    scipy_costs = []
    for sizes, y in zip(curves, losses):
        x, w = np.asarray(sizes, float), np.ones(len(y))
        lower, upper = RECTIFIED.bounds(y)

        def residuals(theta, x=x, y=y):
            return np.log(RECTIFIED.predict(theta, x)) - np.log(y)

        best = min(
            (least_squares(residuals, s, bounds=(lower, upper), method="trf") for s in _starts(RECTIFIED, x, y, w, lower, upper, rng, 3, 2)),
            key=lambda r: r.cost,
        )
        scipy_costs.append(best.cost)
    baseline = time.perf_counter() - start
    gap = float(np.max(np.array([f.objective for f in ours]) - np.array(scipy_costs)))
    return batched, baseline, gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curves-dir", type=Path, default=REPO.parent / "shared" / "data" / "published")
    parser.add_argument("--benchmarks", nargs="+", default=["flan", "gigaword"])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "paper_run.tsv")
    args = parser.parse_args()
    tables = [read_losstable(args.curves_dir / f"{b}.csv", b) for b in args.benchmarks]

    rows = [("whole paper run (snakemake --cores 2)", whole_run(args.curves_dir.resolve(), args.benchmarks))]
    rows.append(("fitting + selection + scoring (1 core)", fit_and_select(tables)))
    batched, baseline, gap = batched_vs_scipy(tables[0])
    rows.append((f"RectifiedFit problems of {tables[0].benchmark}, batched LM", batched))
    rows.append((f"RectifiedFit problems of {tables[0].benchmark}, scipy least_squares per curve", baseline))

    lines = ["measurement\tseconds"] + [f"{name}\t{seconds:.2f}" for name, seconds in rows]
    lines.append(f"batched LM speed-up over scipy (ratio)\t{baseline / batched:.1f}")
    lines.append(f"largest objective excess of batched LM over scipy\t{gap:.2e}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
