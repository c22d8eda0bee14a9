"""Benchmarks from ``datasets``: a hub id or a local folder, with its splits and field mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lensllm.data.benchmark import Benchmark, Example


def load_hub_benchmark(dataset: str, *, split_train: str, split_test: str, source_field: str | None,
                       target_field: str, config: str | None = None, name: str | None = None,
                       test_size: int | None = None, max_train: int | None = None,
                       seed: int = 0, **load_kwargs: object) -> Benchmark:
    """A benchmark from `datasets.load_dataset(dataset, config)` with field mapping.

    `dataset` is a hub id (e.g. "Muennighoff/flan", "wikitext" with config
    "wikitext-103-raw-v1", "gigaword") or a local path: a directory of json/jsonl/csv/parquet
    files (``load_dataset`` takes the split names from file names such as ``train.json``) or a
    ``DatasetDict`` saved with ``save_to_disk``. `source_field=None` makes an ``lm`` benchmark
    whose target is `target_field`; empty texts are dropped. The train split is shuffled with
    ``numpy.random.default_rng(seed)`` and cut at `max_train`; the test split keeps its order
    and is cut at `test_size`. Extra keyword arguments go to `load_dataset`.
    """
    import datasets  # heavy: only imported for hub benchmarks

    if (Path(dataset) / "dataset_dict.json").is_file():
        loaded = datasets.load_from_disk(dataset)
    else:
        loaded = datasets.load_dataset(dataset, config, **load_kwargs)

    def examples(split: str) -> list[Example]:
        if split not in loaded:
            raise ValueError(f"{dataset}: no split {split!r}; it has {sorted(loaded)}")
        columns = loaded[split].column_names
        for field in (source_field, target_field):
            if field is not None and field not in columns:
                raise ValueError(f"{dataset}[{split}]: no field {field!r}; it has {columns}")
        out = []
        for row in loaded[split]:
            source = "" if source_field is None else str(row[source_field] or "").strip()
            target = str(row[target_field] or "").strip()
            if target and (source_field is None or source):
                out.append(Example(source, target))
        return out

    train = examples(split_train)
    rng = np.random.default_rng(seed)
    return Benchmark(
        name=name or f"{dataset}{'/' + config if config else ''}",
        kind="lm" if source_field is None else "pairs",
        train=tuple(train[i] for i in rng.permutation(len(train))[:max_train]),
        test=tuple(examples(split_test)[:test_size]),
        seed=seed,
        sources=((dataset, "see the dataset card or the files' own licence"),),
    )
