"""Benchmarks from the user's own data: local JSONL, JSON, CSV, TSV or Parquet files, read offline
with ``datasets`` (`load_user_benchmark`).

Command line, run by the workflow before any job to refuse a file that cannot be used::

    python -m lensllm.data.user check-user SPEC_JSON
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from lensllm.data.benchmark import Benchmark, BenchmarkFileError, Example

USER_LICENCE = "the user's own data: its licence is the user's"
USER_TEST_SIZE = 1000  # test examples taken from the training file when no test_file is given
USER_BUILDERS = {  # file extension -> (datasets builder, extra load_dataset arguments)
    ".jsonl": ("json", {}),
    ".json": ("json", {}),
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"delimiter": "\t"}),
    ".parquet": ("parquet", {}),
}
_log = logging.getLogger(__name__)


class UserDataError(BenchmarkFileError):
    """The user's data cannot make a benchmark; the message names the file and the field or key."""


# --------------------------------------------------------------------------- checks


def _user_fields(train_file: str, source_field: str | None, target_field: str | None,
                 text_field: str | None) -> tuple[str, dict[str, str]]:
    """The kind ("pairs" or "lm") and the {role: column} of the field keys, or an error."""
    if source_field and target_field and not text_field:
        return "pairs", {"source_field": source_field, "target_field": target_field}
    if text_field and not source_field and not target_field:
        return "lm", {"text_field": text_field}
    raise UserDataError(
        f"{train_file}: give either the keys 'source_field' and 'target_field' (a pairs benchmark: "
        f"the source is the prompt, the target the scored text) or 'text_field' alone (a language "
        f"modelling benchmark); got source_field={source_field!r}, target_field={target_field!r}, "
        f"text_field={text_field!r}")


def _is_integer(value: object) -> bool:
    """An int or a numpy integer, but not a bool."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def _check_sizes(train_path: Path, test_size: int | None, max_train: int | None, min_train: int,
                 min_train_key: str) -> None:
    """`test_size` and `max_train` positive integers or None, `min_train` an integer >= 0 and at
    most `max_train`."""
    for key, value in (("test_size", test_size), ("max_train", max_train)):
        if value is not None and (not _is_integer(value) or value < 1):
            raise UserDataError(f"{train_path}: key {key!r} must be a positive integer, got "
                                f"{value!r}")
    if not _is_integer(min_train) or min_train < 0:
        raise UserDataError(f"{train_path}: key {min_train_key!r} asks for {min_train!r} training "
                            f"examples; expected an integer >= 0")
    if max_train is not None and max_train < min_train:
        raise UserDataError(f"{train_path}: key 'max_train' ({max_train}) is below the "
                            f"{min_train} training examples that key {min_train_key!r} needs")


def _check_test_file(train_path: Path, test_path: Path | None) -> None:
    """A `test_file` that is the `train_file` is an error."""
    if test_path is not None and train_path.is_file() and test_path.is_file() and os.path.samefile(
            train_path, test_path):
        raise UserDataError(f"{test_path} (key 'test_file') is also the train_file: the test split "
                            f"would overlap the training subsets; give a separate test file or "
                            f"leave 'test_file' out to take 'test_size' examples from {train_path}")


# --------------------------------------------------------------------------- reading


def _json_bad_line(path: Path) -> str | None:
    """Where a JSON or JSON Lines file stops being valid ("line N: why"), or None."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            return f"line {err.lineno}: not JSON ({err.msg})"
        return None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            return f"line {number}: not JSON ({err.msg})"
        if not isinstance(record, dict):
            return f"line {number}: expected a JSON object, got {line.strip()[:80]}"
    return None


def _user_text(value: object, path: Path, field: str, key: str, row: int) -> str:
    """A cell as stripped text: None and NaN are empty, numbers and booleans as in JSON."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    raise UserDataError(f"{path}: row {row}, field {field!r} (key {key!r}) holds "
                        f"{type(value).__name__} {str(value)[:80]}, expected text")


def _load_user_table(path: Path, key: str, cache_dir: str):
    """One user file as a ``datasets.Dataset``, read with the builder of its extension (every
    CSV/TSV column as text)."""
    import datasets  # heavy: only imported for hub and user benchmarks

    if not path.exists():
        raise UserDataError(f"{path} (key {key!r}): no such file")
    if not path.is_file():
        raise UserDataError(f"{path} (key {key!r}): not a file")
    extension = path.suffix.lower()
    if extension not in USER_BUILDERS:
        raise UserDataError(f"{path} (key {key!r}): unknown extension {extension or '(none)'!r}; "
                            f"expected one of {', '.join(USER_BUILDERS)}")
    if path.stat().st_size == 0:
        raise UserDataError(f"{path} (key {key!r}): empty file")
    builder, options = USER_BUILDERS[extension]
    options = dict(options)
    if builder == "csv":  # every column as text: keeps "007", "1.50" and "NA" as written
        import pandas

        try:
            header = list(pandas.read_csv(path, sep=options.get("delimiter", ","), nrows=0).columns)
        except Exception as err:
            raise UserDataError(f"{path} (key {key!r}): cannot be read as {extension[1:]} "
                                f"({type(err).__name__}: {err})") from err
        options.update(features=datasets.Features({c: datasets.Value("string") for c in header}),
                       keep_default_na=False)
    try:
        return datasets.load_dataset(builder, data_files={"train": str(path)}, split="train",
                                     cache_dir=cache_dir, **options)
    except Exception as err:
        cause = err.__cause__ or err
        where = _json_bad_line(path) if builder == "json" else None
        raise UserDataError(
            f"{path} (key {key!r}): cannot be read as {extension[1:]}"
            + (f": {where}" if where else f" ({type(cause).__name__}: {cause})")) from err


def _read_user_file(path: Path, fields: dict[str, str], kind: str, key: str,
                    cache_dir: str) -> list[Example]:
    """The examples of one user file, read with `datasets.load_dataset`; empty texts dropped."""
    loaded = _load_user_table(path, key, cache_dir)
    columns = loaded.column_names
    for role, field in fields.items():
        if field not in columns:
            raise UserDataError(f"{path} (key {key!r}): no field {field!r} (key {role!r}); "
                                f"it has {columns}")
    target_field = fields["target_field" if kind == "pairs" else "text_field"]
    table = loaded.select_columns(list(dict.fromkeys(fields.values()))).to_dict()
    targets = [_user_text(value, path, target_field, key, row)
               for row, value in enumerate(table[target_field], start=1)]
    sources = ([""] * len(targets) if kind == "lm" else
               [_user_text(value, path, fields["source_field"], key, row)
                for row, value in enumerate(table[fields["source_field"]], start=1)])
    examples = [Example(source, target) for source, target in zip(sources, targets)
                if target and (kind == "lm" or source)]
    dropped = len(targets) - len(examples)
    if dropped:
        _log.info("%s: dropped %d of %d rows with an empty %s", path, dropped, len(targets),
                  "text" if kind == "lm" else "source or target")
    if not examples:
        raise UserDataError(f"{path} (key {key!r}): no example with a non-empty "
                            f"{' and '.join(repr(f) for f in fields.values())}")
    return examples


def _read_user_files(
        train_path: Path, test_path: Path | None, fields: dict[str, str], kind: str,
        cache_dir: str | os.PathLike | None) -> tuple[list[Example], list[Example] | None]:
    """The examples of the train file and of the test file (None without one); ``datasets``
    caches its Arrow copies in `cache_dir` or else in a temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="lensllm-user-data-") as tmp:
        cache = os.fspath(cache_dir) if cache_dir is not None else tmp
        pool = _read_user_file(train_path, fields, kind, "train_file", cache)
        given_test = (None if test_path is None
                      else _read_user_file(test_path, fields, kind, "test_file", cache))
    return pool, given_test


# --------------------------------------------------------------------------- splits


def _given_test(given_test: list[Example], test_size: int | None,
                test_path: Path) -> list[Example]:
    """The test file's examples in their order, cut at `test_size` when that is given."""
    test = given_test[:test_size]
    if test_size is not None and len(given_test) < test_size:
        _log.info("%s: %d test examples, fewer than test_size=%d: all are used", test_path,
                  len(given_test), test_size)
    return test


def _drawn_test(pool: list[Example], order: np.ndarray, test_size: int,
                train_path: Path) -> list[Example]:
    """The first `test_size` distinct examples of the train file in the seeded `order`."""
    test, held = [], set()
    for i in order:
        if len(test) == test_size:
            break
        if pool[i] not in held:
            held.add(pool[i])
            test.append(pool[i])
    if len(test) < test_size:
        raise UserDataError(
            f"{train_path} (key 'train_file'): key 'test_size' asks for {test_size} test "
            f"examples, but the file has only {len(test)} distinct usable examples")
    return test


def _train_split(pool: list[Example], order: np.ndarray, test: list[Example], *, drawn: bool,
                 train_path: Path, test_path: Path | None, min_train: int,
                 min_train_key: str) -> list[Example]:
    """The train file in the seeded `order` without any row identical to a test example (`drawn`:
    the test split was taken from it); fewer than `min_train` examples is an error."""
    held = set(test)
    train = [pool[i] for i in order if pool[i] not in held]
    overlapping = len(pool) - len(train) - (len(test) if drawn else 0)
    if overlapping:
        _log.info("%s: dropped %d training rows identical to a test example%s", train_path,
                  overlapping, f" of {test_path}" if test_path is not None else "")
    if len(train) < min_train:
        split = (f"the test split ({len(test)} examples from {test_path})" if test_path is not None
                 else f"the test split ({len(test)} examples)")
        raise UserDataError(
            f"key {min_train_key!r} needs {min_train} training examples, {train_path} has only "
            f"{len(train)} after {split}"
            + (f" and dropping {overlapping} rows identical to a test example" if overlapping
               else ""))
    return train


def load_user_benchmark(train_file: str | os.PathLike, *, name: str,
                        source_field: str | None = None, target_field: str | None = None,
                        text_field: str | None = None, test_file: str | os.PathLike | None = None,
                        test_size: int | None = None, max_train: int | None = None,
                        min_train: int = 0, min_train_key: str = "sizes", seed: int = 0,
                        cache_dir: str | os.PathLike | None = None) -> Benchmark:
    """A benchmark from the user's own data: a local JSONL, JSON, CSV, TSV or Parquet file.

    The files are read offline with ``datasets.load_dataset`` (builder "json", "csv" or
    "parquet" by extension; every CSV/TSV column is read as text). `source_field` and
    `target_field` make a ``pairs`` benchmark (the source is the prompt, the loss is taken on the
    target), `text_field` alone an ``lm`` one (source ""). Texts are stripped; rows with an empty
    text are dropped and counted in the log.

    The test split is the whole `test_file`, cut at `test_size` when that is given, or else
    `test_size` (default `USER_TEST_SIZE`) distinct examples of `train_file` drawn with
    ``numpy.random.default_rng(seed)``. The train split is the rest of `train_file` in the same
    seeded order, without any row identical (same source and target) to a test example, cut at
    `max_train`: its subsets of `training_subset` are nested and never overlap the test split.
    Same files and seed, same benchmark.

    Raises `UserDataError` (a `BenchmarkFileError`, so a `ValueError`) naming the file and the
    field or key: a missing file, an unknown extension, a file that cannot be parsed, a missing
    field, too few examples for the test split or for `min_train` training examples (the
    largest training size; `min_train_key` is the config key asking for it), and a `test_file`
    that is `train_file`. `cache_dir` is where ``datasets`` caches its Arrow copy of the files
    (default: a temporary directory, removed afterwards).
    """
    train_path = Path(train_file)
    kind, fields = _user_fields(os.fspath(train_file), source_field, target_field, text_field)
    _check_sizes(train_path, test_size, max_train, min_train, min_train_key)
    test_path = None if test_file is None else Path(test_file)
    _check_test_file(train_path, test_path)
    pool, given_test = _read_user_files(train_path, test_path, fields, kind, cache_dir)
    order = np.random.default_rng(seed).permutation(len(pool))
    if given_test is not None:
        test = _given_test(given_test, test_size, test_path)
    else:
        test = _drawn_test(pool, order, USER_TEST_SIZE if test_size is None else test_size,
                           train_path)
    train = _train_split(pool, order, test, drawn=given_test is None, train_path=train_path,
                         test_path=test_path, min_train=min_train, min_train_key=min_train_key)
    train = train[:max_train]
    _log.info("%s: %s benchmark %r with %d train and %d test examples (seed %d)", train_path, kind,
              name, len(train), len(test), seed)
    files = (train_path,) if test_path is None else (train_path, test_path)
    return Benchmark(name=name, kind=kind, train=tuple(train), test=tuple(test), seed=seed,
                     sources=tuple((os.fspath(path), USER_LICENCE) for path in files))


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lensllm.data.user check-user SPEC_JSON``: load the user's files as the workflow's
    build job will (SPEC_JSON holds the keyword arguments of `load_user_benchmark`) and print the
    split sizes; a file that cannot be used stops with its error (exit status 1), so that the
    workflow can refuse it before any job runs."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m lensllm.data.user", description=main.__doc__)
    parser.add_argument("command", choices=["check-user"])
    parser.add_argument("spec", help="JSON: the keyword arguments of load_user_benchmark")
    args = parser.parse_args(argv)
    try:
        benchmark = load_user_benchmark(**json.loads(args.spec))
    except (ValueError, OSError) as err:
        print(err, file=sys.stderr)
        return 1
    print(json.dumps({"name": benchmark.name, "kind": benchmark.kind, "train": len(benchmark.train),
                      "test": len(benchmark.test)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
