"""The figures of a run (its tables: `lensllm.report.run`), through `lensllm.report.figures`.

- `plot_fit_curves`: per benchmark, each model's loss curve with each law's fit and AtS's
  transition marked.
- `plot_pearcorr`: PearCorr against the data budget per method; `plot_metric_cost`: PearCorr or
  RelAcc against the FLOPs charged per method (the Pareto view: up and to the left is better).
- `plot_hessian`: per benchmark, loss and Hessian trace against D, AtS's transition marked.
- `plot_recommendation` (select mode): each candidate's measured points up to the budget and one
  method's forecast, median and band, out to N.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.ticker import FormatStrFormatter, MaxNLocator, NullLocator

from lensllm.curves.laws import LAWS
from lensllm.curves.losstable import LossTable
from lensllm.report.figures import plt, save_figure
from lensllm.selection.registry import ModelTerms, SelectionSettings
from lensllm.selection.uncertainty import UncertaintySettings, forecast

_LAW_STYLE = {"rectified": ("tab:blue", "-"), "lensllm": ("tab:red", "--"), "vanilla": ("tab:green", ":")}


def plot_fit_curves(table: LossTable, fits: pd.DataFrame, transitions: Mapping[str, int], path: str | os.PathLike) -> None:
    """Each model's curve (log-log), the fit of each law, and AtS's transition as a dotted line."""
    n = len(table.models)
    cols = min(6, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.4 * rows + 0.9), squeeze=False)
    sizes = np.array(table.train_sizes(), dtype=float)
    grid = np.geomspace(sizes[0], sizes[-1], 100)
    for ax, model in zip(axes.ravel(), table.models):
        ax.loglog(sizes, table.curve(model, table.train_sizes()), "k.", ms=4, label="observed")
        for _, fit in fits[fits["model"] == model].iterrows():
            if fit["status"] == "failed":
                continue
            law = LAWS[fit["law"]]
            params = {name: fit[name] for name in law.param_names}
            color, style = _LAW_STYLE.get(law.name, ("gray", "-"))
            ax.loglog(grid, law.predict(law.theta(params), grid), color=color, ls=style, lw=1, label=law.name)
        if model in transitions:
            ax.axvline(transitions[model], color="gray", ls=":", lw=1, label="AtS transition")
        ax.set_title(model[-28:], fontsize=7)
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(f"{table.benchmark}: fine-tuning loss vs data size, fitted laws", fontsize=10)
    # Fixed margins in inches: tight_layout measures every tick label of every panel (8 s on 30 panels).
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=0.45 / width, right=1 - 0.1 / width, bottom=0.75 / height, top=1 - 0.7 / height,
        wspace=0.35, hspace=0.45,
    )
    save_figure(fig, path)


def plot_hessian(table: LossTable, runs: pd.DataFrame, transitions: Mapping[str, int], path: str | os.PathLike) -> None:
    """Loss (top) and Hessian trace of the training loss (bottom) against D for every model, with
    one standard error as a band and each model's AtS transition as a dotted line in its colour.
    D = 0 (the pre-trained model) is drawn at half the smallest size."""
    sizes = np.array(table.sizes, dtype=float)
    x = np.where(sizes > 0, sizes, sizes[sizes > 0].min() / 2)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.0), sharex=True)
    for i, model in enumerate(table.models):
        color = plt.cm.tab10(i % 10)
        rows = runs[runs["model"] == model].set_index("size").reindex(table.sizes)
        top.plot(x, table.curve(model, table.sizes), marker="o", ms=3, color=color, label=model)
        trace, err = rows["hessian_trace"].to_numpy(float), rows["hessian_trace_stderr"].to_numpy(float)
        bottom.plot(x, trace, marker="o", ms=3, color=color)
        bottom.fill_between(x, trace - err, trace + err, color=color, alpha=0.15, lw=0)
        if model in transitions:
            for ax in (top, bottom):
                ax.axvline(transitions[model], color=color, ls=":", lw=1)
    top.set_xscale("log")
    top.set_ylabel("test loss")
    top.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    bottom.set_ylabel("Hessian trace (Hutchinson)")
    bottom.set_xlabel("fine-tuning data size D (0 = pre-trained)")
    bottom.set_xticks(x)
    bottom.set_xticklabels([f"{int(s)}" for s in sizes], fontsize=7)
    bottom.xaxis.set_minor_locator(NullLocator())
    top.legend(fontsize=6, ncol=2)
    fig.suptitle(f"{table.benchmark}: loss and curvature vs D (dotted: AtS phase transition)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def _panels(selection: pd.DataFrame, metric: str):
    data = selection[selection["metric"] == metric]
    benchmarks = list(dict.fromkeys(data["benchmark"]))
    fig, axes = plt.subplots(1, len(benchmarks), figsize=(4.2 * len(benchmarks), 3.4), squeeze=False)
    return data, benchmarks, fig, axes.ravel()


def plot_pearcorr(selection: pd.DataFrame, path: str | os.PathLike) -> None:
    """PearCorr of each method against the data budget (target / ratio), one panel per benchmark."""
    data, benchmarks, fig, axes = _panels(selection, "PearCorr")
    for ax, benchmark in zip(axes, benchmarks):
        for method, rows in data[data["benchmark"] == benchmark].groupby("method", sort=False):
            rows = rows.sort_values("ratio", ascending=False)
            ax.plot(1.0 / rows["ratio"], rows["value_raw"], marker="o", ms=3, label=method)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("data budget (fraction of the target size)")
        ax.set_ylabel("PearCorr (x100)")
        ax.set_title(benchmark)
        ax.axhline(0, color="gray", lw=0.5)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def plot_metric_cost(selection: pd.DataFrame, metric: str, path: str | os.PathLike) -> None:
    """`metric` (PearCorr or RelAcc) of each method against the FLOPs charged for it at each budget
    (its fine-tunes and other compute on the models), one panel per benchmark."""
    data, benchmarks, fig, axes = _panels(selection, metric)
    for ax, benchmark in zip(axes, benchmarks):
        for method, rows in data[data["benchmark"] == benchmark].groupby("method", sort=False):
            rows = rows[rows["flops"] > 0].sort_values("flops")
            if len(rows):
                ax.plot(rows["flops"], rows["value_raw"], marker="o", ms=3, label=method)
        ax.set_xscale("log")
        ax.set_xlabel("FLOPs charged")
        ax.set_ylabel(f"{metric} (x100)")
        ax.set_title(benchmark)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def _log_log_axes(ax) -> None:
    """Log-log axes with plain tick labels (the recommendation figures)."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_major_locator(MaxNLocator(6))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    ax.yaxis.set_minor_locator(NullLocator())


def plot_rounds(rounds, full_size: int, uncertainty: UncertaintySettings, path: str | os.PathLike) -> None:
    """Select mode's rounds (`rounds`, a `lensllm.selection.rounds.RoundsRecord` after its last round):
    each candidate's fine-tunes, marked by the round that bought them, and its forecast at N after the
    last round: the median with its interval (a bar at N, the candidates side by side, the pick's label
    first) and the expected loss (x), the pick rule."""
    import math

    from matplotlib.lines import Line2D
    from scipy.special import ndtri

    z = float(ndtri(0.5 + uncertainty.level / 2))
    bought_in, standing = rounds.bought_in(), {s.model: s for s in rounds.last.standings}
    order = [s.model for s in rounds.last.standings]
    markers = "osD^v<>ph*"
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, model in enumerate(rounds.models):
        color, owned, s = colors[k % len(colors)], rounds.owned[model], standing[model]
        sizes = sorted(owned)
        ax.plot(sizes, [owned[x] for x in sizes], "-", color=color, alpha=0.5, linewidth=1)
        for x in sizes:
            ax.plot([x], [owned[x]], markers[bought_in[(model, x)] % len(markers)], color=color, linestyle="none")
        at = full_size * math.exp(0.05 * (order.index(model) - (len(order) - 1) / 2))
        low, high = s.median * math.exp(-z * s.sigma), s.median * math.exp(z * s.sigma)
        ax.plot([sizes[-1], at], [owned[sizes[-1]], s.median], ":", color=color, linewidth=1)
        ax.errorbar([at], [s.median], yerr=[[s.median - low], [high - s.median]], fmt="_", color=color,
                    capsize=3, label=f"{model}: E[L] {s.expected:.3f}, P(best) {s.p_best:.2f}")
        ax.plot([at], [s.expected], "x", color=color)
    handles, labels = ax.get_legend_handles_labels()
    ranked = sorted(zip(handles, labels), key=lambda hl: order.index(hl[1].split(":")[0]))
    used = sorted({r for r in bought_in.values()})
    ranked += [(Line2D([], [], marker=markers[r % len(markers)], color="grey", linestyle="none"), f"round {r}")
               for r in used]
    ax.legend(*zip(*ranked), fontsize=7, loc="best")
    ax.axvline(rounds.budget, color="grey", linestyle=":", linewidth=1)
    ax.axvline(full_size, color="black", linestyle="--", linewidth=1)
    _log_log_axes(ax)
    ax.set_xlabel("training examples D (dotted: round 0's budget, dashed: N)")
    ax.set_ylabel("test loss")
    ax.set_title(f"{rounds.benchmark}: fine-tunes by round, forecasts at N = {full_size:,} after round "
                 f"{rounds.last.index} ({uncertainty.level:.0%} interval, x: expected loss)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_recommendation(table: LossTable, full_size: int, budget: int, method: str, path: str | os.PathLike,
                        settings: SelectionSettings | None = None, uncertainty: UncertaintySettings | None = None,
                        terms: ModelTerms | None = None, points: int = 12, rounds=None) -> None:
    """Each candidate's measured points up to the budget, and `method`'s predicted curve with its band
    (the forecast at sizes from 2 x budget out to N, log-spaced) on log-log axes; with select mode's
    `rounds`, `plot_rounds`."""
    uncertainty = uncertainty or UncertaintySettings()
    if rounds is not None:
        plot_rounds(rounds, full_size, uncertainty, path)
        return
    targets = sorted({int(round(x)) for x in np.geomspace(2 * budget, full_size, points)} | {full_size})
    curves = [forecast(method, table, [budget], t, settings, terms, uncertainty)[0] for t in targets]
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, model in enumerate(table.models):
        color = colors[k % len(colors)]
        sizes = table.train_sizes(budget)
        ax.plot(sizes, table.curve(model, sizes), "o", color=color, label=model)
        xs, med, lo, hi = [], [], [], []
        for t, f in zip(targets, curves):
            if model in f.models:
                i = f.models.index(model)
                low, high = f.interval(uncertainty.level)
                xs.append(t)
                med.append(f.median[i])
                lo.append(low[i])
                hi.append(high[i])
        if xs:
            ax.plot([sizes[-1], *xs], [table.curve(model, [sizes[-1]])[0], *med], "-", color=color)
            ax.fill_between(xs, lo, hi, color=color, alpha=0.15)
    ax.axvline(budget, color="grey", linestyle=":", linewidth=1)
    ax.axvline(full_size, color="black", linestyle="--", linewidth=1)
    _log_log_axes(ax)
    ax.set_xlabel("training examples D (dotted: budget, dashed: N)")
    ax.set_ylabel("test loss")
    ax.set_title(f"{table.benchmark}: measured up to {budget}, {method} forecast to N = {full_size:,} "
                 f"({uncertainty.level:.0%} band)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    save_figure(fig, path)
