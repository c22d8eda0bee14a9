"""Benchmarks for small-data fine-tuning: three offline ones built from real text, and hub ones.

The offline benchmarks mirror the three task types of the LensLLM and Rectified Scaling Law
papers (Wikitext, Gigaword, FLAN) and are built from raw sources that `lensllm.data.corpora` fetches
from PyPI and Debian only:

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

Examples: for ``lm`` benchmarks ``source`` is empty and ``target`` is the passage; for
``pairs`` benchmarks the loss is taken on the target tokens only.

Hub datasets (`load_hub_benchmark`) and the user's own local JSONL, JSON, CSV, TSV or Parquet
files (`load_user_benchmark`) make benchmarks of the same form, read with ``datasets``.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import html
import json
import logging
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from lensllm.data import corpora
from lensllm.atomic import atomic_path

FORMAT = "lensllm-benchmark/1"
KINDS = ("lm", "pairs")
MAX_SOURCE_CHARS = 600
MAX_TARGET_CHARS = 200
MIN_PASSAGE_CHARS = 200
MAX_PASSAGE_CHARS = 600
MIN_DESCRIPTION_WORDS = 15
FIXED_SEED = 0  # instruct phrasings and the test order: part of the benchmark, not of the seed


@dataclass(frozen=True)
class Example:
    """One example: `source` is the prompt ("" for language modelling), `target` the text scored."""

    source: str
    target: str


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: its train split (in the seeded order of `training_subset`) and test split.

    `seed` is the seed of the train order (None when it was not shuffled here) and `sources`
    the (name, licence) of each raw source it was built from.
    """

    name: str
    kind: str  # "lm" or "pairs"
    train: tuple[Example, ...]
    test: tuple[Example, ...]
    seed: int | None = None
    sources: tuple[tuple[str, str], ...] = ()


class BenchmarkFileError(ValueError):
    """A benchmark file that cannot be read; the message names the path and the line."""


@dataclass(frozen=True)
class _Item:
    """One pooled example with its split unit `key` (raw source, unit) and plain `text`."""

    key: tuple[str, str]
    task: str
    example: Example
    text: str


# --------------------------------------------------------------------------- wiki


_DROP_ELEMENTS = re.compile(
    r"<(ref|math|gallery|timeline|syntaxhighlight|source|score|imagemap|chem|ce)\b[^>]*?"
    r"(/>|>.*?</\1\s*>)",
    re.DOTALL | re.IGNORECASE,
)
_INNER_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_INNER_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.DOTALL)
_INNER_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")
_EXTERNAL_LINK = re.compile(r"\[(?:https?:)?//[^\s\]]+\s*([^\]]*)\]")
_TAG = re.compile(r"<[^<>]{0,200}>")
_END_SECTIONS = re.compile(
    r"^=+\s*(See also|References|External links|Further reading|Notes|Bibliography|Sources|"
    r"Footnotes|Citations)\s*=+\s*$",
    re.MULTILINE | re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def _remove_innermost(pattern: re.Pattern[str], text: str, repl: str | Callable = "") -> str:
    """Apply `pattern` until it no longer matches: removes nested constructs from the inside."""
    while True:
        text, count = pattern.subn(repl, text)
        if not count:
            return text


def _link_text(match: re.Match[str]) -> str:
    """[[target|text]] -> text; links to files, categories and other wikis -> nothing."""
    target, _, label = match.group(1).partition("|")
    if re.match(r"\s*:?\s*[A-Za-z][\w -]*:", target):
        return ""
    return (label.rsplit("|", 1)[-1] if label else target).strip()


def wiki_plain_text(markup: str) -> str:
    """Strip MediaWiki markup to plain prose paragraphs (one per line).

    Removes comments, references, templates, tables, files, categories, headings, lists and the
    trailing reference sections; keeps the text of links and of formatting tags.
    """
    text = re.sub(r"<!--.*?-->", "", markup, flags=re.DOTALL)
    end = _END_SECTIONS.search(text)
    text = text[: end.start()] if end else text
    text = _DROP_ELEMENTS.sub("", text)
    text = _remove_innermost(_INNER_TEMPLATE, text)
    text = _remove_innermost(_INNER_TABLE, text)
    text = _remove_innermost(_INNER_LINK, text, _link_text)
    text = _EXTERNAL_LINK.sub(r"\1", text)
    text = _TAG.sub("", text)
    text = html.unescape(text).replace("\u00a0", " ")
    text = re.sub(r"'{2,}", "", text)
    paragraphs = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "=*#:;|!{}[<" or line.startswith("__"):
            continue
        line = re.sub(r"\(\s*[,;]?\s*\)", "", line)  # parentheses emptied by removed templates
        line = re.sub(r"\(\s*[,;]\s*", "(", line)
        line = re.sub(r"\s+([,.;:!?)])", r"\1", re.sub(r"\s+", " ", line))
        line = re.sub(r"\(\s+", "(", line).strip()
        if len(line.split()) >= 5:
            paragraphs.append(line)
    return "\n".join(paragraphs)


def wiki_articles(path: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """(title, plain text) of each article of a bz2 MediaWiki XML dump, skipping redirects,
    non-article namespaces and disambiguation pages."""
    with bz2.open(path) as stream:
        for _, element in ET.iterparse(stream):
            if not element.tag.endswith("}page") and element.tag != "page":
                continue
            title = element.findtext("{*}title") or element.findtext("title") or ""
            ns = element.findtext("{*}ns") or element.findtext("ns") or "0"
            markup = element.findtext("{*}revision/{*}text") or element.findtext(
                "revision/text") or ""
            redirect = element.find("{*}redirect") is not None or element.find(
                "redirect") is not None
            element.clear()
            if ns != "0" or redirect or re.search(r"\{\{\s*(disambig|dab\b)", markup, re.I):
                continue
            text = wiki_plain_text(markup)
            if text:
                yield title, text


def passages(text: str, *, min_chars: int = MIN_PASSAGE_CHARS,
             max_chars: int = MAX_PASSAGE_CHARS) -> list[str]:
    """Cut `text` into passages of whole sentences of `min_chars`..`max_chars` characters."""
    out: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(" ".join(text.split())):
        if current and len(current) + 1 + len(sentence) > max_chars:
            if len(current) >= min_chars:
                out.append(current)
            current = ""
        if len(sentence) > max_chars:
            continue
        current = f"{current} {sentence}" if current else sentence
    if min_chars <= len(current) <= max_chars:
        out.append(current)
    return out


def _wiki_pool(raw: Path) -> list[_Item]:
    items = []
    for title, text in wiki_articles(raw / corpora.SOURCES["wikipedia"].files[0]):
        for passage in passages(text):
            items.append(_Item(("wikipedia", title), "", Example("", passage), passage))
    return items


# --------------------------------------------------------------------------- debsum


def deb822(text: str) -> Iterator[dict[str, str]]:
    """The paragraphs of a Debian control file (Packages, Translation-en) as field dicts.

    Continuation lines are kept, with their leading space, after a newline.
    """
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def description_text(long_lines: str) -> str:
    """A Debian long description (continuation lines, " ." for blank lines) as plain text."""
    lines = [line[1:] if line.startswith(" ") else line for line in long_lines.splitlines()]
    words = " ".join("" if line.strip() == "." else line.strip() for line in lines)
    return " ".join(words.split())


@dataclass(frozen=True)
class PackageDescription:
    """A Debian binary package with its source package, synopsis and long description."""

    package: str
    source: str
    synopsis: str
    description: str


@lru_cache(maxsize=2)
def package_descriptions(raw: Path) -> tuple[PackageDescription, ...]:
    """The packages of the fetched indices with an English long description, sorted by name.

    The long description comes from the Packages index when it carries one, otherwise from
    Translation-en by (package, Description-md5). The first paragraph of a package wins.
    """
    packages_file, translations_file = corpora.SOURCES["debian-descriptions"].files
    translations: dict[tuple[str, str], str] = {}
    with gzip.open(raw / translations_file, "rt", encoding="utf-8", errors="replace") as f:
        for fields in deb822(f.read()):
            if "Package" in fields and "Description-en" in fields:
                translations[(fields["Package"], fields.get("Description-md5", ""))] = fields[
                    "Description-en"]
    seen: dict[str, PackageDescription] = {}
    with gzip.open(raw / packages_file, "rt", encoding="utf-8", errors="replace") as f:
        for fields in deb822(f.read()):
            name = fields.get("Package", "")
            if not name or name in seen:
                continue
            description = fields.get("Description", "")
            if "\n" not in description:
                description = translations.get((name, fields.get("Description-md5", "")), "")
            synopsis, _, long_lines = description.partition("\n")
            if not synopsis.strip() or not long_lines.strip():
                continue
            source = fields.get("Source", name).split(" ")[0]
            seen[name] = PackageDescription(name, source, synopsis.strip(),
                                            description_text(long_lines))
    return tuple(seen[name] for name in sorted(seen))


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


def _debsum_pool(raw: Path) -> list[_Item]:
    return [
        _Item(("debian-descriptions", pkg.source), "", Example(pkg.description, pkg.synopsis),
              f"{pkg.synopsis}\n{pkg.description}")
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

_WORDNET_POS = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}


def wordnet_glosses(raw: Path) -> Iterator[tuple[str, str, str]]:
    """(word, part of speech, definition) of each synset of the WordNet data files, using its
    first lemma and the gloss without its quoted usage examples."""
    for path in corpora.SOURCES["wordnet"].files[:4]:
        with open(raw / path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  "):  # licence header
                    continue
                head, _, gloss = line.partition(" | ")
                fields = head.split()
                if len(fields) < 5 or not gloss:
                    continue
                word = re.sub(r"\((a|p|ip)\)$", "", fields[4]).replace("_", " ")
                definition = re.split(r';?\s*"', gloss, maxsplit=1)[0].strip().rstrip(";").strip()
                if definition:
                    yield word, _WORDNET_POS.get(fields[2], "word"), definition


def vera_acronyms(raw: Path) -> Iterator[tuple[str, str]]:
    """(acronym, expansion) of each entry of the V.E.R.A. info file, with the acronym in its
    common style when the entry gives one and the reference tags removed."""
    with gzip.open(raw / corpora.SOURCES["vera"].files[0], "rt", encoding="latin-1") as f:
        text = f.read()
    for node in text.split("\x1f"):
        if not re.search(r"Node: ([0A-Z]),", node):
            continue
        for entry in re.finditer(r"^([A-Za-z0-9]+)\n((?: {5}.*\n?)+)", node, re.MULTILINE):
            acronym, expansion = entry.group(1), " ".join(entry.group(2).split())
            styled = re.search(r',\s*"([^"]+)"$', expansion)
            if styled:
                acronym, expansion = styled.group(1), expansion[: styled.start()]
            expansion = re.sub(r"\s*\([^()]*\)$", "", expansion)
            expansion = " ".join(expansion.replace("[", "").replace("]", "").split())
            if expansion:
                yield acronym, expansion


_DING_BRACKETS = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]")
_DING_PARENS = re.compile(r"\([^()]*\)")


def _ding_clean(text: str) -> str:
    """A Ding dictionary term without its {gender}, [domain] and (comment) annotations."""
    if "{" in text or "[" in text:
        text = _DING_BRACKETS.sub("", text)
    if "(" in text:
        text = _remove_innermost(_DING_PARENS, text)
    return " ".join(text.split()).strip(" ;,")


def german_english(raw: Path) -> Iterator[tuple[str, str]]:
    """(German term, English translations) of the first sense of each Ding dictionary line."""
    with open(raw / corpora.SOURCES["trans-de-en"].files[0], encoding="utf-8",
              errors="replace") as f:
        for line in f:
            if line.startswith("#") or " :: " not in line:
                continue
            german, english = (side.split(" | ")[0] for side in line.rstrip("\n").split(" :: ", 1))
            german = _ding_clean(german.split(";")[0])
            english = "; ".join(t for t in (_ding_clean(e) for e in english.split(";")) if t)
            if german and english:
                yield german, english


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
                       pkg.synopsis, f"{pkg.synopsis}\n{pkg.description}")
                      for pkg in _debsum_descriptions(raw)],
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


def training_subset(benchmark: Benchmark, n: int) -> tuple[Example, ...]:
    """The first `n` training examples: the subset of size n is contained in that of size 2n."""
    if n < 0 or n > len(benchmark.train):
        raise ValueError(
            f"benchmark {benchmark.name!r}: cannot take a training subset of size {n}; its train "
            f"split has {len(benchmark.train)} examples"
        )
    return benchmark.train[:n]


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


# --------------------------------------------------------------------------- files


def write_benchmark(benchmark: Benchmark, path: str | os.PathLike) -> None:
    """Write `benchmark` atomically as JSON Lines: a header record, then one record per example
    (``{"split": "train"|"test", "source": ..., "target": ...}``, train in its seeded order)."""
    header = {
        "format": FORMAT,
        "name": benchmark.name,
        "kind": benchmark.kind,
        "seed": benchmark.seed,
        "counts": {"train": len(benchmark.train), "test": len(benchmark.test)},
        "sources": [{"name": n, "licence": licence} for n, licence in benchmark.sources],
    }
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
    )
    if not valid:
        raise BenchmarkFileError(
            f"{path}:1: expected a {FORMAT} header with name, kind ({'/'.join(KINDS)}), seed, "
            f"counts (train, test) and sources (name, licence), got {json.dumps(record)[:160]}")
    return record


# --------------------------------------------------------------------------- hub


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


# --------------------------------------------------------------------------- user data

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


def _read_user_file(path: Path, fields: dict[str, str], kind: str, key: str,
                    cache_dir: str) -> list[Example]:
    """The examples of one user file, read with `datasets.load_dataset`; empty texts dropped."""
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
        loaded = datasets.load_dataset(builder, data_files={"train": str(path)}, split="train",
                                       cache_dir=cache_dir, **options)
    except Exception as err:
        cause = err.__cause__ or err
        where = _json_bad_line(path) if builder == "json" else None
        raise UserDataError(
            f"{path} (key {key!r}): cannot be read as {extension[1:]}"
            + (f": {where}" if where else f" ({type(cause).__name__}: {cause})")) from err
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
    for key, value in (("test_size", test_size), ("max_train", max_train)):
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < 1):
            raise UserDataError(f"{train_path}: key {key!r} must be a positive integer, got "
                                f"{value!r}")
    if isinstance(min_train, bool) or not isinstance(min_train, (int, np.integer)) or min_train < 0:
        raise UserDataError(f"{train_path}: key {min_train_key!r} asks for {min_train!r} training "
                            f"examples; expected an integer >= 0")
    if max_train is not None and max_train < min_train:
        raise UserDataError(f"{train_path}: key 'max_train' ({max_train}) is below the "
                            f"{min_train} training examples that key {min_train_key!r} needs")
    test_path = None if test_file is None else Path(test_file)
    if test_path is not None and train_path.is_file() and test_path.is_file() and os.path.samefile(
            train_path, test_path):
        raise UserDataError(f"{test_path} (key 'test_file') is also the train_file: the test split "
                            f"would overlap the training subsets; give a separate test file or "
                            f"leave 'test_file' out to take 'test_size' examples from {train_path}")
    with tempfile.TemporaryDirectory(prefix="lensllm-user-data-") as tmp:
        cache = os.fspath(cache_dir) if cache_dir is not None else tmp
        pool = _read_user_file(train_path, fields, kind, "train_file", cache)
        given_test = (None if test_path is None
                      else _read_user_file(test_path, fields, kind, "test_file", cache))
    order = np.random.default_rng(seed).permutation(len(pool))
    if given_test is not None:
        test = given_test[:test_size]
        if test_size is not None and len(given_test) < test_size:
            _log.info("%s: %d test examples, fewer than test_size=%d: all are used", test_path,
                      len(given_test), test_size)
        held = set(test)
    else:
        test_size = USER_TEST_SIZE if test_size is None else test_size
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
    train = [pool[i] for i in order if pool[i] not in held]
    overlapping = len(pool) - len(train) - (0 if given_test is not None else len(test))
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
    train = train[:max_train]
    _log.info("%s: %s benchmark %r with %d train and %d test examples (seed %d)", train_path, kind,
              name, len(train), len(test), seed)
    files = (train_path,) if test_path is None else (train_path, test_path)
    return Benchmark(name=name, kind=kind, train=tuple(train), test=tuple(test), seed=seed,
                     sources=tuple((os.fspath(path), USER_LICENCE) for path in files))


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lensllm.data.benchmark check-user SPEC_JSON``: load the user's files as the workflow's
    build job will (SPEC_JSON holds the keyword arguments of `load_user_benchmark`) and print the
    split sizes; a file that cannot be used stops with its error (exit status 1), so that the
    workflow can refuse it before any job runs."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m lensllm.data.benchmark", description=main.__doc__)
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
