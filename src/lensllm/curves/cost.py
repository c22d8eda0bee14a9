"""Fine-tuning cost in FLOPs.

A fine-tuning run on n examples costs  6 * N * tokens  FLOPs (forward + backward, Kaplan et al.),
with N the parameter count and  tokens = n * tokens_per_example * epochs * runs_per_size,
where runs_per_size counts every seed and hyper-parameter setting run at that size. A selector is
charged for exactly the (model, size) fine-tunes it needed; FullTuning fine-tunes every candidate at
the target size; cost reduction = 1 - FLOPs(method) / FLOPs(FullTuning).

Energy, beside FLOPs on our grid: the joules each fine-tune used, as its job measured them
(`lensllm.training.device.EnergyMeter`: NVML on NVIDIA GPUs, RAPL on CPUs that expose it), None where no
counter was readable. A sum over fine-tunes is None as soon as one of them is: a partial sum
would pass for the whole.

A FLOPs table is written as TSV (`write_flops`: model, size, flops, and on our grid energy_joules)
and read back by `read_flops` and `read_energy`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping

import pandas as pd

from lensllm.atomic import write_tsv


@dataclass(frozen=True)
class CostModel:
    """What one fine-tuning example costs on a benchmark."""

    tokens_per_example: float
    epochs: float
    runs_per_size: float

    def finetune_flops(self, params: float, examples: int) -> float:
        """6 * params * examples * tokens_per_example * epochs * runs_per_size."""
        return 6.0 * params * examples * self.tokens_per_example * self.epochs * self.runs_per_size


FlopsTable = Mapping[tuple[str, int], float]
"""FLOPs of the fine-tune of each (model, size): analytic in paper mode, measured on our grid."""
EnergyTable = Mapping[tuple[str, int], "float | None"]
"""Joules of the fine-tune of each (model, size) on our grid, None where not measured."""


def analytic_flops(models: Iterable[str], params: Iterable[float], sizes: Iterable[int], cost: CostModel) -> dict[tuple[str, int], float]:
    """6 * N * tokens for every (model, size); size 0 (zero-shot) costs no fine-tuning."""
    sizes = list(sizes)
    return {(m, s): cost.finetune_flops(n, s) for m, n in zip(models, params) for s in sizes}


def selection_flops(finetunes: Iterable[tuple[str, int]], flops: FlopsTable) -> float:
    """Total FLOPs of the distinct (model, size) fine-tunes a selector needed."""
    return sum(flops[key] for key in set(finetunes))


def selection_energy(finetunes: Iterable[tuple[str, int]], energy: EnergyTable) -> float | None:
    """Total joules of the distinct (model, size) fine-tunes, None unless every one was measured."""
    values = [energy.get(key) for key in set(finetunes)]
    return None if any(v is None for v in values) else float(sum(values))


def full_tuning_flops(models: Iterable[str], target: int, flops: FlopsTable) -> float:
    """FLOPs of fine-tuning every candidate on the full target data size."""
    return sum(flops[(m, target)] for m in models)


def cost_reduction(flops: float, full_flops: float) -> float:
    """1 - flops / full_flops: the fraction of FullTuning's compute a method saves."""
    return 1.0 - flops / full_flops


def write_flops(flops_of: FlopsTable, path: str | os.PathLike, energy: EnergyTable | None = None) -> None:
    """Write a FLOPs table (model, size, flops) as TSV; with `energy` (our grid) an `energy_joules`
    column beside it, empty where the job could read no energy counter."""
    rows = [(m, s, f) for (m, s), f in flops_of.items()]
    frame = pd.DataFrame(rows, columns=["model", "size", "flops"])
    if energy is not None:
        frame["energy_joules"] = [energy.get(key) for key in flops_of]
    write_tsv(frame, path)


def read_energy(path: str | os.PathLike) -> dict[tuple[str, int], float | None]:
    """The `energy_joules` of each (model, size) of a FLOPs table (None where empty); {} when the
    table has no energy column (published curves)."""
    frame = pd.read_csv(path, sep="\t", dtype={"model": str})
    if "energy_joules" not in frame.columns:
        return {}
    return {(m, int(s)): None if pd.isna(e) else float(e)
            for m, s, e in zip(frame["model"], frame["size"], frame["energy_joules"])}


def read_flops(path: str | os.PathLike) -> dict[tuple[str, int], float]:
    """Read a FLOPs table written by `write_flops`."""
    frame = pd.read_csv(path, sep="\t", dtype={"model": str})
    return {(m, int(s)): float(f) for m, s, f in zip(frame["model"], frame["size"], frame["flops"])}
