"""The tables of Lin et al. (2024), "Selecting Large Language Model to Fine-tune via
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

The Markdown and LaTeX of Tables 1 and 2 are rendered by `lensllm.report.tables` (as the run's
selection table); the figures are `lensllm.report.paper_figures`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from lensllm.curves.losstable import LossTable, restrict_params
from lensllm.curves.metrics import pearcorr, relacc
from lensllm.curves.budgets import budgets_for
from lensllm.report.tables import number, table1_latex, table1_layout, table1_markdown, tex
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


def _layout(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1's layout (`lensllm.report.tables`) of a paper table: PearCorr's rows first, ratios ascending."""
    wide = table1_layout(table)
    return wide.loc[sorted(wide.index, key=lambda mr: (mr[0] != "PearCorr", mr[1]))]


def table_markdown(table: pd.DataFrame, title: str) -> str:
    """A paper table (rows metric-ratio, columns benchmark-method) as Markdown, x100, the best of a
    row per benchmark in bold and the second underlined."""
    return f"# {title}\n\n" + table1_markdown(_layout(table), scale=100.0)


def table_latex(table: pd.DataFrame) -> str:
    """A paper table as a booktabs tabular: a column group per benchmark, as in the paper."""
    return table1_latex(_layout(table), scale=100.0)


def _rmsd_wide(rmsd: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    benchmarks = list(dict.fromkeys(rmsd["benchmark"]))
    wide = rmsd.pivot_table(index="model", columns="benchmark", values=["rectified", "vanilla"], sort=False, dropna=False)
    models = list(dict.fromkeys(rmsd["model"]))
    return wide.loc[models], benchmarks


def _rmsd_cells(row: pd.Series, benchmarks: Sequence[str], bold: str) -> list[str]:
    """Each benchmark's RMSD of the rectified and the vanilla law x 10^3, the smaller formatted by `bold`."""
    cells = []
    for b in benchmarks:
        pair = (row[("rectified", b)], row[("vanilla", b)])
        better = int(np.nanargmin(pair)) if np.isfinite(pair).any() else -1
        cells += [(bold if i == better else "{}").format(number(1000.0 * v, ".2f")) for i, v in enumerate(pair)]
    return cells


def rmsd_markdown(rmsd: pd.DataFrame) -> str:
    """Table 3 as Markdown: per model, the RMSD of log-loss x 10^-3 of each law on each benchmark,
    the smaller of the two laws in bold, and the mean over the models."""
    wide, benchmarks = _rmsd_wide(rmsd)
    header = " | ".join(f"{b} rectified | {b} vanilla" for b in benchmarks)
    lines = ["# Table 3: RMSD of log-loss of the fitted laws (x 10^-3)", "",
             "Each law fitted to every non-zero size of each model's curve (`fits.tsv`).", "",
             f"| Model | {header} |", "|" + "---|" * (2 * len(benchmarks) + 1)]
    for model, row in [*wide.iterrows(), ("**Mean**", wide.mean())]:
        lines.append(f"| {model} | " + " | ".join(_rmsd_cells(row, benchmarks, "**{}**")) + " |")
    return "\n".join(lines) + "\n"


def rmsd_latex(rmsd: pd.DataFrame) -> str:
    """Table 3 as a booktabs tabular (x 10^-3), a column pair per benchmark, the mean last."""
    wide, benchmarks = _rmsd_wide(rmsd)
    lines = ["\\begin{tabular}{l" + "rr" * len(benchmarks) + "}", "\\toprule",
             " & " + " & ".join(f"\\multicolumn{{2}}{{c}}{{{tex(b)}}}" for b in benchmarks) + " \\\\",
             "Model & " + " & ".join("Rectified & Vanilla" for _ in benchmarks) + " \\\\", "\\midrule"]
    for model, row in [*wide.iterrows(), ("Mean", wide.mean())]:
        if model == "Mean":
            lines.append("\\midrule")
        lines.append(f"{tex(model)} & " + " & ".join(_rmsd_cells(row, benchmarks, "\\textbf{{{}}}")) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines).replace("—", "--") + "\n"


def docs_table(selection: pd.DataFrame, ratios: Sequence[int] = (8, 64, 512),
                 methods: Sequence[str] = ("AtS", "RectifiedFit", "LensLLM", "VanillaFit", "SubTuning", "ZeroShot", "ModelSize")) -> str:
    """The docs' summary of paper mode (docs/paper-mode.md): rows benchmark and ratio, a column per
    method, "PearCorr / RelAcc" (x100; RelAcc 100 printed as 100), the best of a row per metric in bold.
    Generated from `selection.tsv` (`python -m lensllm.report.paper docs` writes it into that page)."""
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


# The markers around the generated table in docs/paper-mode.md (DOCS_PAGE).
DOCS_PAGE = "docs/paper-mode.md"
TABLE_BEGIN = "<!-- paper-table: generated by `python -m lensllm.report.paper docs` from results/paper/selection.tsv -->"
TABLE_END = "<!-- /paper-table -->"


def replace_page_table(page: str, table: str) -> str:
    """`page` with the text between the paper-table markers replaced by `table`."""
    start, end = page.index(TABLE_BEGIN) + len(TABLE_BEGIN), page.index(TABLE_END)
    return page[:start] + "\n" + table + page[end:]


def page_table(page: str) -> str:
    """The generated table between the paper-table markers of `page`."""
    return page[page.index(TABLE_BEGIN) + len(TABLE_BEGIN):page.index(TABLE_END)].lstrip("\n")


# --- command line: the paper-mode table of the docs ----------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lensllm.report.paper docs [--selection results/paper/selection.tsv]
    [--page docs/paper-mode.md] [--check]``: write (or with --check, compare) the paper-mode table
    between the paper-table markers of the docs page."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lensllm.report.paper",
                                     description="Write the paper-mode table of the docs from a paper run's selection.tsv.")
    parser.add_argument("command", choices=["docs"], help="docs: the table between the paper-table markers of --page")
    parser.add_argument("--selection", default="results/paper/selection.tsv")
    parser.add_argument("--page", default=DOCS_PAGE, help=f"the page holding the markers (default {DOCS_PAGE})")
    parser.add_argument("--check", action="store_true", help="exit 1 when the page's table differs")
    args = parser.parse_args(argv)
    table = docs_table(pd.read_csv(args.selection, sep="\t"))
    text = open(args.page).read()
    if args.check:
        same = page_table(text) == table
        print(f"{args.page}: table is up to date" if same else f"{args.page}: table differs from {args.selection}")
        return 0 if same else 1
    from lensllm.atomic import write_text

    write_text(args.page, replace_page_table(text, table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
