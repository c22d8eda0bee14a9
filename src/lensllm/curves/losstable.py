"""The loss table: the one data contract between fine-tuning and analysis.

One table per benchmark, in the wide format published by Lin et al. (2024): one row per model, the
column ``config name`` with the model's name, one column per fine-tuning data size (``0`` is the
zero-shot loss, then 200, 400, ...), the parameter count ``size`` and the model ``family``. Dataset
sizes are read from the header, never assumed. The same format is written by our own fine-tuning
grid (as TSV) and read back by every analysis step.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lensllm.atomic import atomic_path

NAME_COLUMN = "config name"
PARAMS_COLUMN = "size"
FAMILY_COLUMN = "family"


class LossTableError(ValueError):
    """A loss table that cannot be used; the message names the file, row and column."""


@dataclass(frozen=True, eq=False)
class LossTable:
    """Test losses of fine-tuned models, ``losses[i, j]`` for model i at data size ``sizes[j]``."""

    benchmark: str
    models: tuple[str, ...]
    sizes: tuple[int, ...]
    losses: np.ndarray
    params: np.ndarray
    families: tuple[str, ...]

    def __post_init__(self) -> None:
        self.losses.setflags(write=False)
        self.params.setflags(write=False)

    def column(self, size: int) -> np.ndarray:
        """Losses of every model at data size `size` (0 = zero-shot)."""
        if size not in self.sizes:
            raise KeyError(f"{self.benchmark}: no data size {size} in the loss table (sizes: {list(self.sizes)})")
        return self.losses[:, self.sizes.index(size)]

    def train_sizes(self, budget: int | None = None) -> tuple[int, ...]:
        """The non-zero data sizes, up to and including `budget` when given."""
        return tuple(s for s in self.sizes if s > 0 and (budget is None or s <= budget))

    def curve(self, model: str, sizes: tuple[int, ...]) -> np.ndarray:
        """The losses of `model` at `sizes`."""
        row = self.models.index(model)
        return np.array([self.losses[row, self.sizes.index(s)] for s in sizes])


def read_losstable(path: str | os.PathLike, benchmark: str | None = None) -> LossTable:
    """Read and validate a loss table (``.csv`` or ``.tsv``); errors name the file, row and column.

    Rows are numbered as a spreadsheet shows them: the header is row 1, the first model row 2.
    """
    path = Path(path)
    benchmark = benchmark or path.stem
    try:
        # header=None: the header as written (pandas would rename a repeated column '200' to '200.1')
        frame = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str, keep_default_na=False, header=None)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise LossTableError(f"{path}: cannot be read as a loss table: {err}") from err
    header = [str(c).strip() for c in frame.iloc[0]]
    frame = frame.iloc[1:].reset_index(drop=True)
    for required in (NAME_COLUMN, "0", PARAMS_COLUMN, FAMILY_COLUMN):
        if required not in header:
            raise LossTableError(f"{path}: missing column '{required}' (columns: {', '.join(header)})")
    repeated = [c for i, c in enumerate(header) if c in header[:i]]
    if repeated:
        raise LossTableError(f"{path}: column '{repeated[0]}' appears more than once in the header")
    frame.columns = header
    size_columns = [c for c in header if c not in (NAME_COLUMN, PARAMS_COLUMN, FAMILY_COLUMN)]
    sizes = []
    for name in size_columns:
        if not name.isdigit():
            raise LossTableError(f"{path}: column '{name}' is neither a data size (an integer) nor a known column")
        sizes.append(int(name))
    if sizes != sorted(set(sizes)):
        raise LossTableError(f"{path}: data-size columns must be distinct and increasing, found {size_columns}")
    if len(sizes) < 3:
        raise LossTableError(f"{path}: needs zero-shot plus at least two data sizes, found {size_columns}")

    models = [m.strip() for m in frame[NAME_COLUMN]]
    seen: dict[str, int] = {}
    for i, model in enumerate(models):
        row = i + 2
        if not model:
            raise LossTableError(f"{path}: row {row}, column '{NAME_COLUMN}': empty model name")
        if model in seen:
            raise LossTableError(
                f"{path}: row {row}, column '{NAME_COLUMN}': model '{model}' duplicates row {seen[model]}"
            )
        seen[model] = row
    if not models:
        raise LossTableError(f"{path}: no model rows")

    losses = np.empty((len(models), len(sizes)))
    for j, name in enumerate(size_columns):
        for i, cell in enumerate(frame[name]):
            losses[i, j] = _positive_number(cell, path, i + 2, name, models[i], "loss")
    params = np.array(
        [_positive_number(c, path, i + 2, PARAMS_COLUMN, models[i], "parameter count") for i, c in enumerate(frame[PARAMS_COLUMN])]
    )
    families = tuple(f.strip() or "unknown" for f in frame[FAMILY_COLUMN])
    return LossTable(benchmark, tuple(models), tuple(sizes), losses, params, families)


def _positive_number(cell: str, path: Path, row: int, column: str, model: str, what: str) -> float:
    where = f"{path}: row {row} (model '{model}'), column '{column}'"
    try:
        value = float(cell)
    except ValueError:
        raise LossTableError(f"{where}: {what} {cell!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise LossTableError(f"{where}: {what} {cell!r} must be a positive finite number")
    return value


def write_losstable(table: LossTable, path: str | os.PathLike) -> None:
    """Write `table` atomically, as TSV for a ``.tsv`` path and CSV otherwise."""
    path = Path(path)
    frame = pd.DataFrame(table.losses, columns=[str(s) for s in table.sizes])
    frame.insert(0, NAME_COLUMN, list(table.models))
    frame[PARAMS_COLUMN] = table.params.astype(np.int64)
    frame[FAMILY_COLUMN] = list(table.families)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t" if path.suffix == ".tsv" else ",", index=False, float_format="%.10g")


def restrict_params(table: LossTable, max_params: float | None) -> LossTable:
    """The candidates of `table` with fewer than `max_params` parameters (all of them for None).

    The size constraint of Lin et al.'s (2024) ablation ("models below 7B, 1.9B, 1.4B, 700M"); as a
    filter of the loss table it applies to published curves and to our grid alike.
    """
    if max_params is None:
        return table
    keep = table.params < max_params
    if keep.sum() < 2:
        raise LossTableError(
            f"{table.benchmark}: max_params {max_params:g} leaves {int(keep.sum())} candidate(s) of "
            f"{len(table.models)} (parameter counts {sorted(table.params.tolist())}); choosing needs two"
        )
    return LossTable(
        table.benchmark,
        tuple(m for m, k in zip(table.models, keep) if k),
        table.sizes,
        table.losses[keep].copy(),
        table.params[keep].copy(),
        tuple(f for f, k in zip(table.families, keep) if k),
    )
