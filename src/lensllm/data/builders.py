"""The offline benchmarks for small-data fine-tuning, built from real text.

The offline benchmarks mirror the three task types of the LensLLM and Rectified Scaling Law
papers (Wikitext, Gigaword, FLAN) and are built from raw sources that `lensllm.data.corpora` fetches
from PyPI and Debian only (and `lensllm.data.scrapers` parses):

``wiki`` (language modelling, like Wikitext)
    Passages of a few sentences (200-600 characters) of encyclopedic prose, cut from the ~106
    articles of the English Wikipedia dump excerpt shipped in the gensim wheel, with the wiki
    markup stripped. Licence: CC BY-SA 3.0 and GFDL (Wikipedia contributors).
``debsum`` (summarisation, like Gigaword)
    A Debian package's long description -> its one-line synopsis, from the archive's Packages and
    Translation-en indices. Each description belongs to its package and is distributed under
    that package's licence (all DFSG-free; see the package's copyright file).
``instruct`` (instruction following, like FLAN)
    A templated mixture of four real tasks, each with three phrasings: defining a word from
    WordNet 3.0 glosses (``wordnet-base``; WordNet 3.0 licence), expanding a computing acronym
    from V.E.R.A. (``vera``; GFDL 1.1+), translating a German term to English from the Ding
    dictionary (``trans-de-en``; GPL-2+) and summarising a Debian package description in one
    line (as ``debsum``).

Splits. The test split is fixed: it does not depend on the seed. Examples are grouped in units
(an article, a source package, a headword, an acronym) that never straddle the two splits; the
units are ordered by a hash of their name and taken into the test split until it has
`test_size` examples (for ``instruct`` the quota is shared equally between the tasks). The rest
is the train split, shuffled with ``numpy.random.default_rng(seed)`` (for ``instruct``,
interleaved so that every prefix is a balanced mixture) and cut at `max_train`; the training
subset of size n is its first n examples, so it is contained in the subset of size 2n.

`corpus_texts` gives the plain texts of the same sources, without the test units, for
pre-training a tokenizer and tiny models.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from lensllm.data import corpora
from lensllm.data.benchmark import Benchmark, Example
from lensllm.data.scrapers import (MAX_PASSAGE_CHARS, MIN_PASSAGE_CHARS, PackageDescription,
                                   german_english, package_descriptions, passages, vera_acronyms,
                                   wiki_articles, wordnet_glosses)

MAX_SOURCE_CHARS = 600
MAX_TARGET_CHARS = 200
MIN_DESCRIPTION_WORDS = 15
# The offline benchmarks, built from the raw sources; also the zoo's pre-training corpora.
OFFLINE_BENCHMARKS = ("wiki", "debsum", "instruct")
FIXED_SEED = 0  # instruct phrasings and the test order: part of the benchmark, not of the seed


@dataclass(frozen=True)
class _Item:
    """One pooled example with its split unit `key` (raw source, unit) and plain `text`."""

    key: tuple[str, str]
    task: str
    example: Example
    text: str


# --------------------------------------------------------------------------- wiki


def _wiki_pool(raw: Path) -> list[_Item]:
    items = []
    for title, text in wiki_articles(raw / corpora.SOURCES["wikipedia"].files[0]):
        for passage in passages(text):
            items.append(_Item(("wikipedia", title), "", Example("", passage), passage))
    return items


# --------------------------------------------------------------------------- debsum


def _debsum_descriptions(raw: Path) -> list[PackageDescription]:
    """Descriptions fit for summarisation: long enough, short enough, each text once."""
    texts: set[str] = set()
    out = []
    for pkg in package_descriptions(raw):
        if (len(pkg.description.split()) < MIN_DESCRIPTION_WORDS or pkg.description in texts
                or len(pkg.description) > MAX_SOURCE_CHARS):
            continue
        texts.add(pkg.description)
        out.append(pkg)
    return out


def _package_text(pkg: PackageDescription) -> str:
    """The corpus text of a package: its synopsis, then its long description."""
    return f"{pkg.synopsis}\n{pkg.description}"


def _debsum_pool(raw: Path) -> list[_Item]:
    return [
        _Item(("debian-descriptions", pkg.source), "", Example(pkg.description, pkg.synopsis),
              _package_text(pkg))
        for pkg in _debsum_descriptions(raw)
    ]


# --------------------------------------------------------------------------- instruct

TEMPLATES: dict[str, tuple[str, ...]] = {
    "define": (
        'Define the word "{word}".',
        "What does the {pos} '{word}' mean?",
        "Give a short definition of {word} ({pos}).",
    ),
    "acronym": (
        "What does the acronym {acronym} stand for?",
        'Expand the acronym "{acronym}".',
        "{acronym} is short for what?",
    ),
    "translate": (
        "Translate to English: {german}",
        'What is the English for the German "{german}"?',
        "German: {german}\nEnglish:",
    ),
    "summarise": (
        "Write a one-line summary of this package description: {text}",
        "{text}\n\nSummarise the text above in one line.",
        "Give a short headline for: {text}",
    ),
}


def _instruct_pool(raw: Path) -> list[_Item]:
    # per task: (raw source, unit, template fields, target, corpus text) of each example
    rows: dict[str, list[tuple[str, str, dict[str, str], str, str]]] = {
        "define": [("wordnet", word.lower(), {"word": word, "pos": pos}, definition,
                    f"{word}: {definition}") for word, pos, definition in wordnet_glosses(raw)],
        "acronym": [("vera", acronym.upper(), {"acronym": acronym}, expansion,
                     f"{acronym}: {expansion}") for acronym, expansion in vera_acronyms(raw)],
        "translate": [("trans-de-en", german.lower(), {"german": german}, english,
                       f"{german}: {english}") for german, english in german_english(raw)],
        "summarise": [("debian-descriptions", pkg.source, {"text": pkg.description},
                       pkg.synopsis, _package_text(pkg)) for pkg in _debsum_descriptions(raw)],
    }
    rng = np.random.default_rng(FIXED_SEED)
    items = []
    for task, task_rows in rows.items():
        templates = TEMPLATES[task]
        for (source, unit, fields, target, text), choice in zip(
                task_rows, rng.integers(len(templates), size=len(task_rows))):
            example = Example(templates[choice].format(**fields), target)
            items.append(_Item((source, unit), task, example, text))
    return items


# --------------------------------------------------------------------------- building

_POOLS: dict[str, tuple[str, Callable[[Path], list[_Item]]]] = {
    "wiki": ("lm", _wiki_pool),
    "debsum": ("pairs", _debsum_pool),
    "instruct": ("pairs", _instruct_pool),
}


def _fits(kind: str, example: Example) -> bool:
    if kind == "lm":
        return MIN_PASSAGE_CHARS <= len(example.target) <= MAX_PASSAGE_CHARS
    return (0 < len(example.source) <= MAX_SOURCE_CHARS
            and 0 < len(example.target) <= MAX_TARGET_CHARS)


@lru_cache(maxsize=4)
def _pool(name: str, raw_dir: str) -> tuple[_Item, ...]:
    """The filtered, de-duplicated pool of benchmark `name`, in a fixed order."""
    if name not in _POOLS:
        raise ValueError(f"unknown benchmark {name!r}; known: {sorted(_POOLS)}")
    corpora.require(raw_dir, corpora.BENCHMARK_SOURCES[name])
    kind, make = _POOLS[name]
    seen: set[tuple[str, Example]] = set()
    items = []
    for item in make(Path(raw_dir)):
        if _fits(kind, item.example) and (item.task, item.example) not in seen:
            seen.add((item.task, item.example))
            items.append(item)
    return tuple(items)


def _unit_order(name: str, task: str, key: tuple[str, str]) -> str:
    return hashlib.sha256(f"{name}\0{task}\0{key[0]}\0{key[1]}".encode()).hexdigest()


def build_benchmark(name: str, raw_dir: str | os.PathLike, *, test_size: int,
                    max_train: int | None, seed: int) -> Benchmark:
    """Build benchmark `name` ("wiki", "debsum" or "instruct") from the raw sources in `raw_dir`.

    Deterministic given `seed`; the test split (`test_size` examples) does not depend on it and
    shares no unit (article, package, headword) with the train split, which has at most
    `max_train` examples (all when None) in the seeded order of `training_subset`. Raises
    `corpora.SourceUnavailable` when a raw source is missing and `ValueError` when the pool is
    too small for `test_size`.
    """
    if test_size < 0 or (max_train is not None and max_train < 0):
        raise ValueError(f"{name}: test_size and max_train must be >= 0, got {test_size}, "
                         f"{max_train}")
    items = _pool(name, str(Path(raw_dir).resolve()))
    tasks = sorted({item.task for item in items})
    by_task = {task: [item for item in items if item.task == task] for task in tasks}
    test: list[Example] = []
    train_by_task: list[list[Example]] = []
    for index, task in enumerate(tasks):
        quota = test_size // len(tasks) + (index < test_size % len(tasks))
        units: dict[tuple[str, str], list[Example]] = {}
        for item in by_task[task]:
            units.setdefault(item.key, []).append(item.example)
        taken: list[Example] = []
        train: list[Example] = []
        for key in sorted(units, key=lambda k: _unit_order(name, task, k)):
            if len(taken) < quota:
                taken += units[key][: quota - len(taken)]  # the rest of a cut unit is dropped
            else:
                train += units[key]
        if len(taken) < quota:
            raise ValueError(f"{name}: task {task or name!r} has {len(taken)} examples, fewer "
                             f"than its test quota {quota} (test_size={test_size})")
        test += taken
        train_by_task.append(train)
    rng = np.random.default_rng(seed)
    order: list[Example] = []
    rounds: list[int] = []
    for train in train_by_task:
        order += [train[i] for i in rng.permutation(len(train))]
        rounds += range(len(train))
    interleaved = np.lexsort((rng.random(len(order)), np.asarray(rounds, dtype=np.int64)))
    shuffled = tuple(order[i] for i in interleaved[:max_train])
    return Benchmark(
        name=name,
        kind=_POOLS[name][0],
        train=shuffled,
        test=tuple(test[i] for i in np.random.default_rng(FIXED_SEED).permutation(len(test))),
        seed=seed,
        sources=tuple((r["name"], r["licence"]) for r in corpora.source_records(
            raw_dir, corpora.BENCHMARK_SOURCES[name])),
    )


# --------------------------------------------------------------------------- corpus


def corpus_texts(raw_dir: str | os.PathLike, names: Sequence[str], *,
                 exclude: Sequence[Benchmark] = ()) -> list[str]:
    """Plain texts of the benchmarks `names` for pre-training a tokenizer and tiny models.

    Wiki passages, package synopsis + description, "word: definition", "acronym: expansion" and
    "German: English" lines, each text once, in a fixed order. Texts of the units (article,
    package, headword, acronym) that appear in the test split of a benchmark in `exclude` are
    left out, so that pre-training does not see the test data.
    """
    raw = str(Path(raw_dir).resolve())
    held_out: set[tuple[str, str]] = set()
    for benchmark in exclude:
        test = set(benchmark.test)
        held_out |= {item.key for item in _pool(benchmark.name, raw) if item.example in test}
    texts: dict[str, None] = {}
    for name in names:
        for item in _pool(name, raw):
            if item.key not in held_out:
                texts.setdefault(item.text)
    return list(texts)
