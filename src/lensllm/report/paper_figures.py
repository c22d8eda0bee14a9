"""The figures of Lin et al. (2024) rebuilt from a run (the tables: `lensllm.report.paper`), each
written as PNG and PDF without creation dates (`lensllm.report.figures`, reproducible), so that the
same run writes the same bytes.

- `plot_difficulty`: why choosing is hard: per benchmark, each model's true loss at the target,
  zero-shot loss, loss at one budget and parameter count; the orders disagree.
- `plot_rmsd_scatter`: Table 3 as a scatter, vanilla against rectified law, per benchmark.
- `plot_zero_shot_lines`: every model's curve from zero-shot on, one line a model.
- `plot_ablation_heatmap` / `plot_ablation_bars`: the two ablations (`ablation_hyper`, `ablation_size`).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from lensllm.curves.losstable import LossTable
from lensllm.report.figures import plt, save_figure


def plot_difficulty(tables: Sequence[LossTable], target: int, ratio: int, paths: Sequence[str | os.PathLike]) -> None:
    """Why choosing is hard: per benchmark, every model's true loss at the target (bars, sorted),
    with its zero-shot loss and its loss after fine-tuning on the budget target / ratio (markers)
    and its parameter count (right axis): the orders disagree."""
    fig, axes = plt.subplots(len(tables), 1, figsize=(11, 3.6 * len(tables)), squeeze=False)
    for ax, table in zip(axes.ravel(), tables):
        true = table.column(target)
        order = np.argsort(true)
        x = np.arange(len(order))
        ax.bar(x, true[order], color="tab:blue", alpha=0.7, label=f"loss at D = {target:,} (truth)")
        ax.plot(x, table.column(0)[order], "v", color="tab:red", ms=5, label="zero-shot loss")
        ax.plot(x, table.column(target // ratio)[order], "o", color="tab:orange", ms=4, label=f"loss at D = {target // ratio:,} (1/{ratio})")
        right = ax.twinx()
        right.plot(x, table.params[order], "s", color="gray", ms=3, label="parameters")
        right.set_yscale("log")
        right.set_ylabel("parameters", fontsize=8)
        ax.set_xticks(x)
        ax.set_xticklabels([table.models[i].split("/")[-1] for i in order], rotation=70, ha="right", fontsize=6)
        ax.set_yscale("log")
        ax.set_ylabel("test loss (log)")
        ax.set_title(f"{table.benchmark}: models ordered by their full-data loss", fontsize=9)
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="upper left")
    fig.tight_layout()
    save_figure(fig, paths, reproducible=True)


def plot_rmsd_scatter(rmsd: pd.DataFrame, paths: Sequence[str | os.PathLike]) -> None:
    """Per benchmark, each model's RMSD of log-loss: vanilla law (x) against rectified law (y), log
    axes; points below the diagonal are fitted better by the rectified law."""
    benchmarks = list(dict.fromkeys(rmsd["benchmark"]))
    fig, axes = plt.subplots(1, len(benchmarks), figsize=(4.2 * len(benchmarks), 4.0), squeeze=False)
    for ax, b in zip(axes.ravel(), benchmarks):
        rows = rmsd[rmsd["benchmark"] == b]
        ax.loglog(rows["vanilla"], rows["rectified"], "o", ms=4)
        low = np.nanmin(rows[["vanilla", "rectified"]].to_numpy()) / 1.5
        high = np.nanmax(rows[["vanilla", "rectified"]].to_numpy()) * 1.5
        ax.plot([low, high], [low, high], color="gray", lw=0.8, ls="--")
        ax.set_xlabel("RMSD, vanilla law")
        ax.set_ylabel("RMSD, rectified law")
        ax.set_title(f"{b}: mean {np.nanmean(rows['rectified']):.4f} vs {np.nanmean(rows['vanilla']):.4f}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, paths, reproducible=True)


def plot_zero_shot_lines(tables: Sequence[LossTable], paths: Sequence[str | os.PathLike]) -> None:
    """Per benchmark, every model's loss from zero-shot (D = 0, drawn at half the smallest size)
    through every size, one line a model: the pre-power phase is the flat start of each line, and
    lines that cross show why the zero-shot order is not the full-data order."""
    fig, axes = plt.subplots(1, len(tables), figsize=(5.2 * len(tables), 4.2), squeeze=False)
    for ax, table in zip(axes.ravel(), tables):
        sizes = np.array(table.sizes, dtype=float)
        x = np.where(sizes > 0, sizes, sizes[sizes > 0].min() / 2)
        for i, model in enumerate(table.models):
            ax.plot(x, table.losses[i], lw=0.9, color=plt.cm.viridis(i / max(1, len(table.models) - 1)))
        ax.set_xscale("log")
        ax.set_xlabel("fine-tuning data size D (leftmost point: zero-shot)")
        ax.set_ylabel("test loss")
        ax.set_title(f"{table.benchmark}: {len(table.models)} models", fontsize=9)
    fig.tight_layout()
    save_figure(fig, paths, reproducible=True)


def plot_ablation_heatmap(hyper: pd.DataFrame, paths: Sequence[str | os.PathLike]) -> None:
    """AtS's PearCorr (x100) per (k, delta) (rows) and ratio (columns), one heat map per benchmark."""
    benchmarks = list(dict.fromkeys(hyper["benchmark"]))
    fig, axes = plt.subplots(1, len(benchmarks), figsize=(5.0 * len(benchmarks), 5.2), squeeze=False)
    for ax, b in zip(axes.ravel(), benchmarks):
        wide = hyper[hyper["benchmark"] == b].pivot_table(index=["k", "delta"], columns="ratio", values="value")
        image = ax.imshow(100 * wide.to_numpy(), cmap="viridis", vmin=0, vmax=100, aspect="auto")
        for (i, j), v in np.ndenumerate(100 * wide.to_numpy()):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6, color="white" if v < 60 else "black")
        ax.set_xticks(range(len(wide.columns)))
        ax.set_xticklabels([f"1/{r}" for r in wide.columns], fontsize=7)
        ax.set_yticks(range(len(wide.index)))
        ax.set_yticklabels([f"k={k}, δ={d:g}" for k, d in wide.index], fontsize=7)
        ax.set_title(f"{b}: AtS PearCorr (x100)", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    save_figure(fig, paths, reproducible=True)


def plot_ablation_bars(size: pd.DataFrame, paths: Sequence[str | os.PathLike]) -> None:
    """PearCorr and RelAcc (x100, mean over the budgets) of each method with the candidates below
    each parameter limit: a panel per benchmark and metric, a bar group per limit."""
    benchmarks = list(dict.fromkeys(size["benchmark"]))
    metrics = ["PearCorr", "RelAcc"]
    methods = list(dict.fromkeys(size["method"]))
    limits = list(dict.fromkeys(size["max_params"]))
    fig, axes = plt.subplots(len(benchmarks), 2, figsize=(10, 3.2 * len(benchmarks)), squeeze=False)
    width = 0.8 / len(methods)
    for r, b in enumerate(benchmarks):
        for c, metric in enumerate(metrics):
            ax = axes[r, c]
            rows = size[(size["benchmark"] == b) & (size["metric"] == metric)]
            mean = rows.groupby(["max_params", "method"])["value"].mean()
            for i, method in enumerate(methods):
                ax.bar(np.arange(len(limits)) + (i - (len(methods) - 1) / 2) * width,
                       [100 * mean.get((p, method), np.nan) for p in limits], width, label=method)
            ax.set_xticks(range(len(limits)))
            ax.set_xticklabels([f"< {p / 1e9:g}B" for p in limits], fontsize=8)
            ax.axhline(0, color="gray", lw=0.5)
            ax.set_title(f"{b}: {metric} (x100, mean over budgets)", fontsize=9)
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, paths, reproducible=True)
