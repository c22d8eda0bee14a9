"""The tables and figures of Lin et al. (2024), "Selecting Large Language Model to Fine-tune via
Rectified Scaling Law", rebuilt from our selectors and loss tables (no code path of their own).

Every value is a fraction, as in the authors' released results (``rsl-*.csv``); the Markdown and
LaTeX renderings show x100 with one decimal, as the paper prints them.

- Table 1 (`paper_table`, methods `TABLE1_METHODS`): PearCorr and RelAcc of AtS, ZeroShot,
  SubTuning and ModelSize at every budget, rows (metric, ratio), columns (benchmark, method).
- Table 2 (`paper_table`, methods `TABLE2_METHODS`): the selectors built on each law: AtS, the
  rectified law fitted to zero-shot plus every training size (``RectifiedFit``, the paper's
  "OurFit") and the vanilla power law (``VanillaFit``).
- Table 3 (`rmsd_table`): per model, the root mean squared deviation of log-loss of the rectified
  and the vanilla law fitted to the whole curve (every non-zero size):
  RMSD = sqrt(mean_D (log L_fit(D) - log L(D))^2), the ``rms_log`` of ``fits.tsv``.
- `ablation_hyper`: AtS's PearCorr for every k in `ks` and delta in `deltas` (the other
  settings as configured), at every budget.
- `ablation_size`: PearCorr and RelAcc of `methods` with the candidates restricted to fewer than
  each of `max_params` parameters (`lensllm.curves.losstable.restrict_params`): the metrics are computed
  on the restricted set, RelAcc against its own best and worst model.

PearCorr = Pearson r between a method's per-model score and the true target loss (over the models it
scored); RelAcc = (L_worst - L_selected) / (L_worst - L_best) over the true target losses of every
candidate (`lensllm.curves.metrics`, divided by 100 here).

The figures (`plot_*`) use the Agg backend with a fixed size and dpi, as `lensllm.report.run`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from lensllm.curves.losstable import LossTable, restrict_params
from lensllm.curves.metrics import pearcorr, relacc
from lensllm.curves.budgets import budgets_for
from lensllm.selection.registry import Selection, SelectionSettings, run_selector

TABLE1_METHODS = ("AtS", "ZeroShot", "SubTuning", "ModelSize")
TABLE2_METHODS = ("AtS", "RectifiedFit", "VanillaFit")
# The names of the released results (rsl-table2-laws.csv) where ours differ.
RELEASED_NAMES = {"RectifiedFit": "OurFit"}
TABLE_COLUMNS = ["benchmark", "method", "ratio", "budget", "metric", "value"]
HYPER_COLUMNS = ["benchmark", "ratio", "budget", "k", "delta", "metric", "value"]
SIZE_COLUMNS = ["benchmark", "max_params", "n_models", "method", "ratio", "budget", "metric", "value"]
RMSD_COLUMNS = ["benchmark", "model", "params", "rectified", "vanilla"]


@dataclass(frozen=True)
class AblationSettings:
    """The grids of the two ablations (Lin et al. 2024, Section 6): AtS's k and delta, and the
    parameter limits of the candidates with the methods compared under them."""

    ks: tuple[int, ...] = (3, 4, 5)
    deltas: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0)
    max_params: tuple[float, ...] = (7e9, 1.9e9, 1.4e9, 7e8)
    methods: tuple[str, ...] = field(default=TABLE1_METHODS)

    @classmethod
    def from_config(cls, values: Mapping) -> AblationSettings:
        """From the config section ``paper`` (keys ablation_k, ablation_delta, ablation_max_params,
        ablation_methods; absent keys keep the paper's values)."""
        default = cls()
        return cls(
            tuple(int(k) for k in values.get("ablation_k", default.ks)),
            tuple(float(d) for d in values.get("ablation_delta", default.deltas)),
            tuple(float(p) for p in values.get("ablation_max_params", default.max_params)),
            tuple(values.get("ablation_methods", default.methods)),
        )


def score(selection: Selection, table: LossTable) -> dict[str, float]:
    """PearCorr and RelAcc of one selection as fractions, against `table`'s target column."""
    true = dict(zip(table.models, table.column(selection.target)))
    return {
        "PearCorr": pearcorr(selection.scores, [true[m] for m in selection.models]) / 100.0,
        "RelAcc": relacc(true[selection.selected()], table.column(selection.target)) / 100.0,
    }


def paper_table(selection: pd.DataFrame, methods: Sequence[str], target: int) -> pd.DataFrame:
    """The rows of `selection.tsv` for `methods` (in that order), values as fractions.

    `value` = value_raw / 100 (unrounded), `budget` = target // ratio; the table keeps the benchmark
    order of `selection`.
    """
    missing = [m for m in methods if m not in set(selection["method"])]
    if missing:
        raise ValueError(f"the paper's table needs the methods {missing}, which the run did not score (config key 'methods')")
    rows = selection[selection["method"].isin(methods)].copy()
    rows["method"] = pd.Categorical(rows["method"], categories=list(methods), ordered=True)
    rows["_benchmark"] = pd.Categorical(rows["benchmark"], categories=list(dict.fromkeys(selection["benchmark"])), ordered=True)
    rows["_metric"] = rows["metric"].map({"PearCorr": 0, "RelAcc": 1})
    rows = rows.sort_values(["_benchmark", "method", "_metric", "ratio"])
    out = pd.DataFrame(
        {
            "benchmark": rows["benchmark"].to_numpy(),
            "method": rows["method"].astype(str).to_numpy(),
            "ratio": rows["ratio"].to_numpy(),
            "budget": target // rows["ratio"].to_numpy(),
            "metric": rows["metric"].to_numpy(),
            "value": rows["value_raw"].to_numpy() / 100.0,
        }
    )
    return out.reset_index(drop=True)


def ablation_hyper(tables: Sequence[LossTable], target: int, ratios: Sequence[int], settings: SelectionSettings,
                   ablation: AblationSettings) -> pd.DataFrame:
    """AtS's PearCorr (fraction) for every (k, delta) of `ablation`, benchmark and budget."""
    rows = []
    for table in tables:
        for k in ablation.ks:
            for delta in ablation.deltas:
                knobs = SelectionSettings(**{**settings.__dict__, "ats_k": k, "ats_delta": delta})
                for s in run_selector("AtS", table, list(budgets_for(target, ratios).values()), target, knobs):
                    rows.append([table.benchmark, target // s.budget, s.budget, k, delta, "PearCorr", score(s, table)["PearCorr"]])
    return pd.DataFrame(rows, columns=HYPER_COLUMNS)


def ablation_size(tables: Sequence[LossTable], target: int, ratios: Sequence[int], settings: SelectionSettings,
                  ablation: AblationSettings) -> pd.DataFrame:
    """PearCorr and RelAcc (fractions) of `ablation.methods` on the candidates below each
    parameter limit of `ablation`, per benchmark and budget."""
    rows = []
    for table in tables:
        for limit in ablation.max_params:
            restricted = restrict_params(table, limit)
            for method in ablation.methods:
                for s in run_selector(method, restricted, list(budgets_for(target, ratios).values()), target, settings):
                    for metric, value in score(s, restricted).items():
                        rows.append([table.benchmark, limit, len(restricted.models), method, target // s.budget, s.budget, metric, value])
    return pd.DataFrame(rows, columns=SIZE_COLUMNS)


def rmsd_table(fits: pd.DataFrame, tables: Sequence[LossTable] = ()) -> pd.DataFrame:
    """Table 3: per benchmark and model, the RMSD of log-loss of the rectified and the vanilla
    law fitted to the whole curve (``fits.tsv``'s rms_log; NaN where the fit failed)."""
    laws = set(fits["law"])
    if not {"rectified", "vanilla"} <= laws:
        raise ValueError(f"Table 3 needs the rectified and vanilla fits (config key 'laws'), found {sorted(laws)}")
    fits = fits.assign(rms=np.where(fits["status"] == "failed", np.nan, fits["rms_log"]))
    wide = fits.pivot_table(index=["benchmark", "model"], columns="law", values="rms", sort=False, dropna=False)
    params = {(t.benchmark, m): p for t in tables for m, p in zip(t.models, t.params)}
    rows = [[b, m, params.get((b, m), np.nan), row["rectified"], row["vanilla"]] for (b, m), row in wide.iterrows()]
    return pd.DataFrame(rows, columns=RMSD_COLUMNS)


# --- rendering -----------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{100.0 * value:.1f}"


def _ranked(values: Mapping, best: int = 2) -> dict:
    """Rank 1 and 2 (highest) of `values` (ties share a rank), on the printed one-decimal values."""
    shown = {k: round(100.0 * v, 1) for k, v in values.items() if np.isfinite(v)}
    distinct = sorted(set(shown.values()), reverse=True)
    return {k: distinct.index(v) + 1 for k, v in shown.items() if distinct.index(v) < best}


def _layout(table: pd.DataFrame):
    benchmarks = list(dict.fromkeys(table["benchmark"]))
    methods = list(dict.fromkeys(table["method"]))
    wide = table.pivot_table(index=["metric", "ratio"], columns=["benchmark", "method"], values="value", sort=False)
    columns = [(b, m) for b in benchmarks for m in methods if (b, m) in wide.columns]
    order = sorted(wide.index, key=lambda mr: (mr[0] != "PearCorr", mr[1]))
    return wide.loc[order, columns], benchmarks


def _row_ranks(row: pd.Series, columns, benchmarks: Sequence[str]) -> dict:
    """The best (1) and second (2) cell of a table row within each benchmark's columns."""
    ranks = {}
    for b in benchmarks:
        ranks.update(_ranked({c: row[c] for c in columns if c[0] == b}))
    return ranks


def table_markdown(table: pd.DataFrame, title: str) -> str:
    """A paper table (rows metric-ratio, columns benchmark-method) as Markdown, x100, the best of a
    row per benchmark in bold and the second underlined."""
    wide, benchmarks = _layout(table)
    lines = [f"# {title}", "", "| Metric | Ratio | " + " | ".join(f"{b} {m}" for b, m in wide.columns) + " |",
             "|" + "---|" * (len(wide.columns) + 2)]
    for (metric, ratio), row in wide.iterrows():
        ranks = _row_ranks(row, wide.columns, benchmarks)
        cells = [_mark(_pct(row[c]), ranks.get(c), "**{}**", "<u>{}</u>") for c in wide.columns]
        lines.append(f"| {metric} | 1/{ratio} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table_latex(table: pd.DataFrame) -> str:
    """A paper table as a booktabs tabular: a column group per benchmark, as in the paper."""
    wide, benchmarks = _layout(table)
    spans = [(b, sum(1 for c in wide.columns if c[0] == b)) for b in benchmarks]
    lines = ["\\begin{tabular}{ll" + "r" * len(wide.columns) + "}", "\\toprule",
             " & & " + " & ".join(f"\\multicolumn{{{n}}}{{c}}{{{_tex(b)}}}" for b, n in spans) + " \\\\",
             "Metric & Ratio & " + " & ".join(_tex(m) for _, m in wide.columns) + " \\\\", "\\midrule"]
    for (metric, ratio), row in wide.iterrows():
        ranks = _row_ranks(row, wide.columns, benchmarks)
        cells = [_mark(_pct(row[c]), ranks.get(c), "\\textbf{{{}}}", "\\underline{{{}}}") for c in wide.columns]
        lines.append(f"{metric} & 1/{ratio} & " + " & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines).replace("—", "--") + "\n"


def _mark(text: str, rank: int | None, bold: str, underline: str) -> str:
    return bold.format(text) if rank == 1 else underline.format(text) if rank == 2 else text


def _tex(text: str) -> str:
    return str(text).replace("_", "\\_").replace("&", "\\&").replace("%", "\\%")


def _rmsd_wide(rmsd: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    benchmarks = list(dict.fromkeys(rmsd["benchmark"]))
    wide = rmsd.pivot_table(index="model", columns="benchmark", values=["rectified", "vanilla"], sort=False, dropna=False)
    models = list(dict.fromkeys(rmsd["model"]))
    return wide.loc[models], benchmarks


def rmsd_markdown(rmsd: pd.DataFrame) -> str:
    """Table 3 as Markdown: per model, the RMSD of log-loss x 10^-3 of each law on each benchmark,
    the smaller of the two laws in bold, and the mean over the models."""
    wide, benchmarks = _rmsd_wide(rmsd)
    header = " | ".join(f"{b} rectified | {b} vanilla" for b in benchmarks)
    lines = ["# Table 3: RMSD of log-loss of the fitted laws (x 10^-3)", "",
             "Each law fitted to every non-zero size of each model's curve (`fits.tsv`).", "",
             f"| Model | {header} |", "|" + "---|" * (2 * len(benchmarks) + 1)]
    for model, row in [*wide.iterrows(), ("**Mean**", wide.mean())]:
        cells = []
        for b in benchmarks:
            pair = (row[("rectified", b)], row[("vanilla", b)])
            better = int(np.nanargmin(pair)) if np.isfinite(pair).any() else -1
            cells += [("**{}**" if i == better else "{}").format(_milli(v)) for i, v in enumerate(pair)]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def rmsd_latex(rmsd: pd.DataFrame) -> str:
    """Table 3 as a booktabs tabular (x 10^-3), a column pair per benchmark, the mean last."""
    wide, benchmarks = _rmsd_wide(rmsd)
    lines = ["\\begin{tabular}{l" + "rr" * len(benchmarks) + "}", "\\toprule",
             " & " + " & ".join(f"\\multicolumn{{2}}{{c}}{{{_tex(b)}}}" for b in benchmarks) + " \\\\",
             "Model & " + " & ".join("Rectified & Vanilla" for _ in benchmarks) + " \\\\", "\\midrule"]
    for model, row in [*wide.iterrows(), ("Mean", wide.mean())]:
        if model == "Mean":
            lines.append("\\midrule")
        cells = []
        for b in benchmarks:
            pair = (row[("rectified", b)], row[("vanilla", b)])
            better = int(np.nanargmin(pair)) if np.isfinite(pair).any() else -1
            cells += [("\\textbf{{{}}}" if i == better else "{}").format(_milli(v)) for i, v in enumerate(pair)]
        lines.append(f"{_tex(model)} & " + " & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines).replace("—", "--") + "\n"


def _milli(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{1000.0 * value:.2f}"


def readme_table(selection: pd.DataFrame, ratios: Sequence[int] = (8, 64, 512),
                 methods: Sequence[str] = ("AtS", "RectifiedFit", "LensLLM", "VanillaFit", "SubTuning", "ZeroShot", "ModelSize")) -> str:
    """The README's summary of paper mode: rows benchmark and ratio, a column per method,
    "PearCorr / RelAcc" (x100; RelAcc 100 printed as 100), the best of a row per metric in bold.
    Generated from `selection.tsv` (`python -m lensllm.report.paper readme` writes it into README.md)."""
    methods = [m for m in methods if m in set(selection["method"])]
    lines = ["| ratio | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 1)]
    names = {"flan": "FLAN", "gigaword": "Gigaword", "wmt19": "WMT19"}
    for benchmark in dict.fromkeys(selection["benchmark"]):
        rows = selection[selection["benchmark"] == benchmark]
        for ratio in ratios:
            at = rows[rows["ratio"] == ratio].set_index(["metric", "method"])["value"]
            cells = []
            best = {metric: max(at[(metric, m)] for m in methods) for metric in ("PearCorr", "RelAcc")}
            for m in methods:
                parts = []
                for metric in ("PearCorr", "RelAcc"):
                    v = at[(metric, m)]
                    text = "100" if metric == "RelAcc" and v == 100 else f"{v:.1f}"
                    parts.append(f"**{text}**" if v == best[metric] else text)
                cells.append(" / ".join(parts))
            lines.append(f"| {names.get(benchmark, benchmark)} 1/{ratio} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- paper-table: generated by `python -m lensllm.report.paper readme` from results/paper/selection.tsv -->"
README_END = "<!-- /paper-table -->"


def replace_readme_table(readme: str, table: str) -> str:
    """`readme` with the text between the paper-table markers replaced by `table`."""
    start, end = readme.index(README_BEGIN) + len(README_BEGIN), readme.index(README_END)
    return readme[:start] + "\n" + table + readme[end:]


def readme_block(readme: str) -> str:
    """The generated table between the paper-table markers of `readme`."""
    return readme[readme.index(README_BEGIN) + len(README_BEGIN):readme.index(README_END)].lstrip("\n")


# --- figures -------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, paths: Sequence[str | os.PathLike]) -> None:
    """Write `fig` to every path (format from the extension: PNG, PDF), atomically, and close it."""
    from lensllm.atomic import atomic_path
    from lensllm.report.run import DPI

    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=DPI, format=os.path.splitext(str(path))[1].lstrip(".") or "png", metadata=_METADATA[
                os.path.splitext(str(path))[1]])
    _plt().close(fig)


# No creation dates in the files: the same run writes the same bytes.
_METADATA = {".png": {"Software": None}, ".pdf": {"CreationDate": None, "Producer": None}}


def plot_difficulty(tables: Sequence[LossTable], target: int, ratio: int, paths: Sequence[str | os.PathLike]) -> None:
    """Why choosing is hard: per benchmark, every model's true loss at the target (bars, sorted),
    with its zero-shot loss and its loss after fine-tuning on the budget target / ratio (markers)
    and its parameter count (right axis): the orders disagree."""
    plt = _plt()
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
    _save(fig, paths)


def plot_rmsd_scatter(rmsd: pd.DataFrame, paths: Sequence[str | os.PathLike]) -> None:
    """Per benchmark, each model's RMSD of log-loss: vanilla law (x) against rectified law (y), log
    axes; points below the diagonal are fitted better by the rectified law."""
    plt = _plt()
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
    _save(fig, paths)


def plot_zero_shot_lines(tables: Sequence[LossTable], paths: Sequence[str | os.PathLike]) -> None:
    """Per benchmark, every model's loss from zero-shot (D = 0, drawn at half the smallest size)
    through every size, one line a model: the pre-power phase is the flat start of each line, and
    lines that cross show why the zero-shot order is not the full-data order."""
    plt = _plt()
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
    _save(fig, paths)


def plot_ablation_heatmap(hyper: pd.DataFrame, paths: Sequence[str | os.PathLike]) -> None:
    """AtS's PearCorr (x100) per (k, delta) (rows) and ratio (columns), one heat map per benchmark."""
    plt = _plt()
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
    _save(fig, paths)


def plot_ablation_bars(size: pd.DataFrame, paths: Sequence[str | os.PathLike]) -> None:
    """PearCorr and RelAcc (x100, mean over the budgets) of each method with the candidates below
    each parameter limit: a panel per benchmark and metric, a bar group per limit."""
    plt = _plt()
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
    _save(fig, paths)


# --- command line: the README's table ------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lensllm.report.paper readme [--selection results/paper/selection.tsv] [--readme README.md]
    [--check]``: write (or with --check, compare) the README's paper-mode table."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lensllm.report.paper")
    parser.add_argument("command", choices=["readme"])
    parser.add_argument("--selection", default="results/paper/selection.tsv")
    parser.add_argument("--readme", default="README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 when the README's table differs")
    args = parser.parse_args(argv)
    table = readme_table(pd.read_csv(args.selection, sep="\t"))
    text = open(args.readme).read()
    if args.check:
        same = readme_block(text) == table
        print("README table is up to date" if same else "README table differs from " + args.selection)
        return 0 if same else 1
    from lensllm.atomic import write_text

    write_text(args.readme, replace_readme_table(text, table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
