"""Gather the fine-tuning grid: one JSON per (model, benchmark, size) -> the loss table and FLOPs.

The loss table is the same contract as the published curves (`lensllm.curves.losstable`): a row per model,
the test loss at each size (0 = zero-shot), the parameter count as ``size`` and the architecture as
``family``. Alongside it come the measured FLOPs of every fine-tune (the cost each selector is
charged), a per-model facts table (parameters, measured and analytic FLOPs per training token), and
a per-run table (optimizer steps, tokens, FLOPs, test loss, Hessian trace, and the training loss and
Hessian distance of the PAC-Bayes bound, of every fine-tune).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from lensllm.curves.losstable import LossTable

RUN_COLUMNS = ["model", "size", "steps", "tokens_seen", "flops", "test_loss", "hessian_trace", "hessian_trace_stderr", "wall_seconds",
               "energy_joules", "device", "precision", "gpu_name", "train_loss", "train_loss_max", "hessian_distance",
               "hessian_distance_seconds"]
FACT_COLUMNS = ["model", "n_params", "n_params_matmul", "family", "flops_per_token_measured", "flops_per_token_analytic", "finetune_seconds"]


class GridError(ValueError):
    """Job results that do not form a complete grid; the message names the file or the gap."""


def read_job(path: str | os.PathLike) -> dict:
    """Read one fine-tuning job's JSON, checking the keys the analysis needs."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise GridError(f"{path}: not a readable job result: {err}") from err
    missing = {"model", "benchmark", "size", "test_loss", "n_params", "flops_measured", "tokens_seen"} - set(record)
    if missing:
        raise GridError(f"{path}: job result lacks {sorted(missing)}")
    return record


def collect_grid(
    paths: Iterable[str | os.PathLike], benchmark: str, families: dict[str, str]
) -> tuple[LossTable, dict[tuple[str, int], float], pd.DataFrame, pd.DataFrame]:
    """The loss table, the measured FLOPs of each (model, size), the per-model facts and the runs.

    `families` maps each model to its family (architecture) for the table's ``family`` column.
    """
    records = {}
    for path in paths:
        record = read_job(path)
        if record["benchmark"] != benchmark:
            raise GridError(f"{path}: a result of benchmark '{record['benchmark']}', not '{benchmark}'")
        key = (record["model"], int(record["size"]))
        if key in records:
            raise GridError(f"{path}: a second result for model '{key[0]}' at size {key[1]}")
        records[key] = record
    models = list(dict.fromkeys(m for m, _ in records))
    sizes = sorted({s for _, s in records})
    gaps = [(m, s) for m in models for s in sizes if (m, s) not in records]
    if gaps:
        raise GridError(f"{benchmark}: the grid has no result for (model, size) {gaps[:5]}")
    if sizes[0] != 0:
        raise GridError(f"{benchmark}: the grid has no zero-shot (size 0) results")
    losses = np.array([[records[(m, s)]["test_loss"] for s in sizes] for m in models])
    params = np.array([records[(m, sizes[0])]["n_params"] for m in models], dtype=float)
    table = LossTable(benchmark, tuple(models), tuple(sizes), losses, params, tuple(families.get(m, "unknown") for m in models))
    flops = {key: float(r["flops_measured"]) if key[1] > 0 else 0.0 for key, r in records.items()}
    facts = []
    for m in models:
        trained = [records[(m, s)] for s in sizes if s > 0]
        tokens = sum(r["tokens_seen"] for r in trained)
        facts.append(
            [
                m,
                records[(m, 0)]["n_params"],
                records[(m, 0)].get("n_params_matmul", records[(m, 0)]["n_params"]),
                families.get(m, "unknown"),
                sum(r["flops_measured"] for r in trained) / tokens if tokens else float("nan"),
                sum(r.get("flops_analytic", float("nan")) for r in trained) / tokens if tokens else float("nan"),
                sum(r.get("wall_seconds", float("nan")) for r in trained),
            ]
        )
    runs = pd.DataFrame(
        [[m, s, *(records[(m, s)].get(c) for c in RUN_COLUMNS[2:])] for m in models for s in sizes], columns=RUN_COLUMNS
    )
    runs["flops"] = [flops[(m, s)] for m, s in zip(runs["model"], runs["size"])]
    return table, flops, pd.DataFrame(facts, columns=FACT_COLUMNS), runs


def energy_of(runs: pd.DataFrame) -> dict[tuple[str, int], float | None]:
    """The joules of each fine-tune of a runs table (`collect_grid`): measured ones, 0 for a
    zero-shot evaluation that was measured (no fine-tuning, like its FLOPs), None where the job
    read no counter."""
    energy = {}
    for model, size, joules in zip(runs["model"], runs["size"], runs["energy_joules"]):
        measured = joules is not None and not pd.isna(joules)
        energy[(model, int(size))] = (0.0 if int(size) == 0 else float(joules)) if measured else None
    return energy


def read_runs(path: str | os.PathLike) -> pd.DataFrame:
    """Read the per-run table written by the collect step (see `RUN_COLUMNS`)."""
    runs = pd.read_csv(path, sep="\t", dtype={"model": str})
    # The columns from energy_joules on came later: tables written before them still read.
    missing = set(RUN_COLUMNS[:RUN_COLUMNS.index("energy_joules")]) - set(runs.columns)
    if missing:
        raise GridError(f"{path}: the runs table lacks the columns {sorted(missing)}")
    return runs
