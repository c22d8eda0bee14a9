"""Parsers of the raw text sources that `lensllm.data.corpora` fetches, for the offline builders.

A MediaWiki XML dump (articles -> plain prose -> passages of whole sentences), the Debian
Packages and Translation-en indices (package descriptions), and three dictionaries: the WordNet
3.0 data files, the V.E.R.A. acronym list and the Ding German-English dictionary.
"""

from __future__ import annotations

import bz2
import gzip
import html
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

from lensllm.data import corpora

MIN_PASSAGE_CHARS = 200
MAX_PASSAGE_CHARS = 600


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


# --------------------------------------------------------------------------- debian


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


# --------------------------------------------------------------------------- dictionaries

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
