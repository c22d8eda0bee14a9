"""The benchmark format: a train split in its seeded order and a fixed test split, as JSON Lines.

Examples: for ``lm`` benchmarks ``source`` is empty and ``target`` is the passage; for
``pairs`` benchmarks the loss is taken on the target tokens only. The training subset of size n
is the first n examples of the train split, so it is contained in the subset of size 2n.

Benchmarks are made by `lensllm.data.builders` (the offline ones, from raw text sources),
`lensllm.data.hub` (``datasets`` hub ids and local folders) and `lensllm.data.user` (the user's
own files).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from lensllm.atomic import atomic_path

FORMAT = "lensllm-benchmark/1"
KINDS = ("lm", "pairs")


@dataclass(frozen=True)
class Example:
    """One example: `source` is the prompt ("" for language modelling), `target` the text scored."""

    source: str
    target: str


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: its train split (in the seeded order of `training_subset`) and test split.

    `seed` is the seed of the train order (None when it was not shuffled here), `sources`
    the (name, licence) of each raw source it was built from, and `skipped_rows` the (file, number
    of rows) of each of the user's files whose unusable rows were skipped (``skip_bad_rows``).
    """

    name: str
    kind: str  # "lm" or "pairs"
    train: tuple[Example, ...]
    test: tuple[Example, ...]
    seed: int | None = None
    sources: tuple[tuple[str, str], ...] = ()
    skipped_rows: tuple[tuple[str, int], ...] = ()


class BenchmarkFileError(ValueError):
    """A benchmark file that cannot be read; the message names the path and the line."""


def training_subset(benchmark: Benchmark, n: int) -> tuple[Example, ...]:
    """The first `n` training examples: the subset of size n is contained in that of size 2n."""
    if n < 0 or n > len(benchmark.train):
        raise ValueError(
            f"benchmark {benchmark.name!r}: cannot take a training subset of size {n}; its train "
            f"split has {len(benchmark.train)} examples"
        )
    return benchmark.train[:n]


# --------------------------------------------------------------------------- files


def write_benchmark(benchmark: Benchmark, path: str | os.PathLike) -> None:
    """Write `benchmark` atomically as JSON Lines: a header record, then one record per example
    (``{"split": "train"|"test", "source": ..., "target": ...}``, train in its seeded order).
    The header holds ``skipped_rows`` ([{"file", "rows"}]) only when rows were skipped, so that
    every other benchmark file is as before."""
    header = {
        "format": FORMAT,
        "name": benchmark.name,
        "kind": benchmark.kind,
        "seed": benchmark.seed,
        "counts": {"train": len(benchmark.train), "test": len(benchmark.test)},
        "sources": [{"name": n, "licence": licence} for n, licence in benchmark.sources],
    }
    if benchmark.skipped_rows:
        header["skipped_rows"] = [{"file": f, "rows": n} for f, n in benchmark.skipped_rows]
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(header, ensure_ascii=False) + "\n")
        for split, examples in (("train", benchmark.train), ("test", benchmark.test)):
            for ex in examples:
                record = {"split": split, "source": ex.source, "target": ex.target}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_benchmark(path: str | os.PathLike) -> Benchmark:
    """Read a file of `write_benchmark`; raise `BenchmarkFileError` naming the path and line."""
    splits: dict[str, list[Example]] = {"train": [], "test": []}
    header: dict | None = None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise BenchmarkFileError(f"{path}:{number}: not JSON ({err.msg})") from err
            if header is None:
                header = _check_header(record, path)
                continue
            if (not isinstance(record, dict) or record.get("split") not in splits
                    or not isinstance(record.get("source"), str)
                    or not isinstance(record.get("target"), str)):
                raise BenchmarkFileError(
                    f"{path}:{number}: expected {{\"split\": \"train\"|\"test\", \"source\": str,"
                    f" \"target\": str}}, got {line.strip()[:120]}")
            splits[record["split"]].append(Example(record["source"], record["target"]))
    if header is None:
        raise BenchmarkFileError(f"{path}:1: empty file, expected a benchmark header")
    counts = {split: len(examples) for split, examples in splits.items()}
    if counts != header["counts"]:
        raise BenchmarkFileError(f"{path}: header counts {header['counts']} but the file has "
                                 f"{counts} (truncated?)")
    return Benchmark(
        name=header["name"], kind=header["kind"], train=tuple(splits["train"]),
        test=tuple(splits["test"]), seed=header["seed"],
        sources=tuple((s["name"], s["licence"]) for s in header["sources"]),
        skipped_rows=tuple((s["file"], s["rows"]) for s in header.get("skipped_rows", [])),
    )


def _check_header(record: object, path: str | os.PathLike) -> dict:
    valid = (
        isinstance(record, dict) and record.get("format") == FORMAT
        and record.get("kind") in KINDS and isinstance(record.get("name"), str)
        and (record.get("seed") is None or isinstance(record.get("seed"), int))
        and isinstance(record.get("counts"), dict)
        and set(record["counts"]) == {"train", "test"}
        and isinstance(record.get("sources"), list)
        and all(isinstance(s, dict) and isinstance(s.get("name"), str)
                and isinstance(s.get("licence"), str) for s in record["sources"])
        and isinstance(record.get("skipped_rows", []), list)
        and all(isinstance(s, dict) and isinstance(s.get("file"), str)
                and isinstance(s.get("rows"), int) for s in record.get("skipped_rows", []))
    )
    if not valid:
        raise BenchmarkFileError(
            f"{path}:1: expected a {FORMAT} header with name, kind ({'/'.join(KINDS)}), seed, "
            f"counts (train, test), sources (name, licence) and optionally skipped_rows (file, "
            f"rows), got {json.dumps(record)[:160]}")
    return record
