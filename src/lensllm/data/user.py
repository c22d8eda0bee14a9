"""Benchmarks from the user's own data: local JSONL, JSON, CSV, TSV or Parquet files, read offline
(JSONL and JSON line by line, the others with ``datasets``; `load_user_benchmark`).

Every row is read one by one: a row that cannot be used (a line that is not JSON or not a JSON
object, a source, target or text field that is missing, null, empty or not text) is named by its
file, its place (JSON Lines: "line N", the 1-based line of the file; a JSON array: "record N";
CSV/TSV: "data row N", counted from 1 below the header; Parquet: "row N") and the field. By default
such rows stop the load with a `UserDataError` listing the first `BAD_ROWS_SHOWN` of them; with
``skip_bad_rows=True`` (config key ``user_data.<name>.skip_bad_rows``) they are skipped, each one
logged, and the number skipped per file is kept in the benchmark (`Benchmark.skipped_rows`).

Command line, run by the workflow before any job to refuse a file that cannot be used::

    python -m lensllm.data.user check-user SPEC_JSON
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
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
BAD_ROWS_SHOWN = 5  # unusable rows listed in the error; the rest are counted ("and N more")
_log = logging.getLogger(__name__)


class UserDataError(BenchmarkFileError):
    """The user's data cannot make a benchmark; the message names the file and the field or key."""


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be used: `where` it is ("line 7", "record 3", "data row 3", "row 3") and
    why (`problem`, naming the field and its config key)."""

    where: str
    problem: str


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


def _json_rows(path: Path, key: str) -> list[tuple[str, object]]:
    """The rows of a JSON Lines or JSON file as (where, record): "line N" (the 1-based line; blank
    lines are no rows) of JSON Lines, "record N" of a JSON array. The record of a line that is not
    UTF-8 text or not JSON is its `BadRow`; any other may be anything JSON holds (a non-object is
    judged by `_row_examples`). An array that does not parse is an error: no row can be named."""
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    json_file, array = path.suffix.lower() == ".json", data.lstrip().startswith(b"[")
    if json_file or array:
        try:  # one JSON document: an array of records (or a single record)
            document = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            if json_file and array:  # an array that does not parse: no row can be named
                where = (f"line {err.lineno}: not JSON ({err.msg})"
                         if isinstance(err, json.JSONDecodeError) else "not UTF-8 text")
                raise UserDataError(f"{path} (key {key!r}): cannot be read as json: {where}") from err
        else:  # else JSON Lines (in a .json file too, as datasets reads it)
            records = document if isinstance(document, list) else [document]
            return [(f"record {number}", record) for number, record in enumerate(records, start=1)]
    rows: list[tuple[str, object]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            rows.append((f"line {number}", BadRow(f"line {number}", "not UTF-8 text")))
            continue
        try:
            rows.append((f"line {number}", json.loads(line)))
        except json.JSONDecodeError as err:
            rows.append((f"line {number}", BadRow(f"line {number}", f"not JSON ({err.msg})")))
    return rows


def _load_user_table(path: Path, key: str, fields: Sequence[str],
                     cache_dir: str) -> tuple[list[str], list[tuple[str, object]]]:
    """One user file as (its columns, its rows as (where, record)): JSON Lines and JSON read here,
    line by line (so that each bad line can be named; the columns are every key of its objects),
    CSV/TSV and Parquet with the ``datasets`` builder of the extension (every CSV/TSV column as
    text; "data row N" counted from 1 below the header), their records holding only `fields`."""
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
    if builder == "json":
        rows = _json_rows(path, key)
        columns: dict[str, None] = {}
        for _, record in rows:
            if isinstance(record, dict):
                columns.update(dict.fromkeys(record))
        return list(columns), rows
    import datasets  # heavy: only imported for hub and user benchmarks

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
        loaded = datasets.load_dataset(builder, data_files={"train": str(path)}, split="train",
                                       cache_dir=cache_dir, **options)
    except Exception as err:
        cause = err.__cause__ or err
        raise UserDataError(f"{path} (key {key!r}): cannot be read as {extension[1:]} "
                            f"({type(cause).__name__}: {cause})") from err
    label = "data row" if builder == "csv" else "row"
    records = loaded.select_columns([f for f in fields if f in loaded.column_names]).to_list()
    return loaded.column_names, [(f"{label} {number}", record)
                                 for number, record in enumerate(records, start=1)]


def _cell_text(record: dict, field: str) -> tuple[str, str | None]:
    """A field of a row as stripped text, or ("", why it cannot be used): missing, null, NaN,
    empty (or only white space), or not text; numbers and booleans are text as JSON writes them."""
    if field not in record:
        return "", "is missing"
    value = record[field]
    if value is None:
        return "", "is null"
    if isinstance(value, str):
        text = value.strip()
        return (text, None) if text else ("", "is empty")
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return "", "is NaN"
    if isinstance(value, (bool, np.bool_)):
        return json.dumps(bool(value)), None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return json.dumps(value.item() if isinstance(value, np.generic) else value), None
    return "", f"holds {type(value).__name__} {json.dumps(value, default=str)[:60]}, not text"


def _row_examples(rows: list[tuple[str, object]],
                  fields: dict[str, str]) -> tuple[list[Example], list[BadRow]]:
    """The examples of the usable rows (source "" for language modelling) and every unusable row."""
    examples, bad = [], []
    for where, record in rows:
        if isinstance(record, BadRow):
            bad.append(record)
            continue
        if not isinstance(record, dict):
            shown = json.dumps(record, default=str)[:60]
            bad.append(BadRow(where, f"not a JSON object (got {shown})"))
            continue
        texts, problems = {}, []
        for role, field in fields.items():
            texts[role], problem = _cell_text(record, field)
            if problem:
                problems.append(f"field {field!r} (key {role!r}) {problem}")
        if problems:
            bad.append(BadRow(where, "; ".join(problems)))
        else:
            examples.append(Example(texts.get("source_field", ""),
                                    texts.get("target_field", texts.get("text_field", ""))))
    return examples, bad


def _bad_rows_message(path: Path, key: str, name: str, bad: list[BadRow], rows: int) -> str:
    """The error for the unusable rows of one file: how many, the first `BAD_ROWS_SHOWN` of them
    (one per line, indented), then how many more, and the key that would skip them."""
    counted = (" (data rows counted from 1 below the header)"
               if bad[0].where.startswith("data row") else "")
    lines = [f"{path} (key {key!r}): {len(bad)} of its {rows} row{'s' if rows != 1 else ''} "
             f"cannot be used{counted}; fix "
             f"them, or set user_data.{name}.skip_bad_rows: true to skip them:"]
    lines += [f"  {row.where}: {row.problem}" for row in bad[:BAD_ROWS_SHOWN]]
    if len(bad) > BAD_ROWS_SHOWN:
        lines.append(f"  and {len(bad) - BAD_ROWS_SHOWN} more")
    return "\n".join(lines)


def _read_user_file(path: Path, fields: dict[str, str], key: str, cache_dir: str, name: str,
                    skip_bad_rows: bool) -> tuple[list[Example], int]:
    """The examples of one user file and the number of unusable rows skipped; unusable rows are
    an error naming them unless `skip_bad_rows`, when each is logged and skipped."""
    columns, rows = _load_user_table(path, key, list(dict.fromkeys(fields.values())), cache_dir)
    for role, field in fields.items():
        if columns and field not in columns:  # (no columns: not one JSON object, every row bad)
            raise UserDataError(f"{path} (key {key!r}): no field {field!r} (key {role!r}); "
                                f"it has {columns}")
    examples, bad = _row_examples(rows, fields)
    if bad and not skip_bad_rows:
        raise UserDataError(_bad_rows_message(path, key, name, bad, len(rows)))
    for row in bad:
        _log.warning("%s (key %r): skipped %s (skip_bad_rows): %s", path, key, row.where,
                     row.problem)
    if bad:
        _log.warning("%s (key %r): skipped %d of %d rows (skip_bad_rows)", path, key, len(bad),
                     len(rows))
    if not examples:
        raise UserDataError(f"{path} (key {key!r}): no example with a non-empty "
                            f"{' and '.join(repr(f) for f in fields.values())}")
    return examples, len(bad)


def _read_user_files(
        train_path: Path, test_path: Path | None, fields: dict[str, str], name: str,
        skip_bad_rows: bool, cache_dir: str | os.PathLike | None,
) -> tuple[list[Example], list[Example] | None, tuple[tuple[str, int], ...]]:
    """The examples of the train file and of the test file (None without one), and the (file,
    rows skipped) of each file with skipped rows; ``datasets`` caches its Arrow copies in
    `cache_dir` or else in a temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="lensllm-user-data-") as tmp:
        cache = os.fspath(cache_dir) if cache_dir is not None else tmp
        pool, skipped = _read_user_file(train_path, fields, "train_file", cache, name,
                                        skip_bad_rows)
        counts = [(os.fspath(train_path), skipped)]
        given_test = None
        if test_path is not None:
            given_test, skipped = _read_user_file(test_path, fields, "test_file", cache, name,
                                                  skip_bad_rows)
            counts.append((os.fspath(test_path), skipped))
    return pool, given_test, tuple((path, n) for path, n in counts if n)


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
                        skip_bad_rows: bool = False,
                        cache_dir: str | os.PathLike | None = None) -> Benchmark:
    """A benchmark from the user's own data: a local JSONL, JSON, CSV, TSV or Parquet file.

    The files are read offline: JSON Lines and JSON line by line with ``json``, CSV, TSV and
    Parquet with ``datasets.load_dataset`` (every CSV/TSV column as text). `source_field` and
    `target_field` make a ``pairs`` benchmark (the source is the prompt, the loss is taken on the
    target), `text_field` alone an ``lm`` one (source ""). Texts are stripped; numbers and
    booleans are text as JSON writes them. A row that cannot be used (not JSON, not an object, a
    field missing, null, empty or not text) is an error naming the file, the row and the field
    (the first `BAD_ROWS_SHOWN` such rows, then how many more); with `skip_bad_rows` such rows are
    skipped instead, each one logged, and `Benchmark.skipped_rows` holds how many per file.

    The test split is the whole `test_file`, cut at `test_size` when that is given, or else
    `test_size` (default `USER_TEST_SIZE`) distinct examples of `train_file` drawn with
    ``numpy.random.default_rng(seed)``. The train split is the rest of `train_file` in the same
    seeded order, without any row identical (same source and target) to a test example, cut at
    `max_train`: its subsets of `training_subset` are nested and never overlap the test split.
    Same files and seed, same benchmark.

    Raises `UserDataError` (a `BenchmarkFileError`, so a `ValueError`) naming the file and the
    field or key: a missing file, an unknown extension, a file that cannot be parsed, a missing
    field, unusable rows (unless `skip_bad_rows`), too few examples for the test split or for `min_train` training examples (the
    largest training size; `min_train_key` is the config key asking for it), and a `test_file`
    that is `train_file`. `cache_dir` is where ``datasets`` caches its Arrow copy of the files
    (default: a temporary directory, removed afterwards).
    """
    train_path = Path(train_file)
    kind, fields = _user_fields(os.fspath(train_file), source_field, target_field, text_field)
    _check_sizes(train_path, test_size, max_train, min_train, min_train_key)
    test_path = None if test_file is None else Path(test_file)
    _check_test_file(train_path, test_path)
    pool, given_test, skipped = _read_user_files(train_path, test_path, fields, name,
                                                 skip_bad_rows, cache_dir)
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
                     sources=tuple((os.fspath(path), USER_LICENCE) for path in files),
                     skipped_rows=skipped)


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
                      "test": len(benchmark.test), "skipped_rows": dict(benchmark.skipped_rows)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
