"""Benchmarks and raw sources, offline: tiny raw directories in the exact format of the fetch."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pytest

from lensllm.data import benchmark, builders, corpora, hub, scrapers
from lensllm.data.benchmark import Example

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
         "sigma tau upsilon phi chi psi omega").split()


def _sentence(i: int) -> str:
    words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(10))
    return f"Sentence {i} tells that {words}."


def _article(title: str, first: int, markup: str = "") -> str:
    body = "\n\n".join(" ".join(_sentence(first + 4 * p + s) for s in range(4)) for p in range(5))
    return f"""  <page>
    <title>{title}</title>
    <ns>0</ns>
    <revision><text xml:space="preserve">{markup}{body}
== References ==
{{{{Reflist}}}} trailing reference section text that must be dropped entirely.
</text></revision>
  </page>
"""


MARKUP = """{{Infobox thing|name=X|note={{nested|template}}}}
[[File:X.png|thumb|A caption with a [[link]] inside]]
'''Article''' is a [[Target page|displayed text]] with a ref.&lt;ref&gt;{{cite web|url=x}}&lt;/ref&gt; It is [[plain]] and notable in many ways today.
{| class="wikitable"
|-
| table cell that must vanish
|}
== Heading ==
* a list item that must vanish
[[Category:Things]]
"""


def _write_raw(raw: Path) -> None:
    """A raw directory in the layout and formats of `corpora.fetch`."""
    articles = "".join(_article(f"Article {a}", 100 * a, MARKUP if a == 0 else "")
                       for a in range(6))
    redirect = ("  <page><title>Old</title><ns>0</ns><redirect title=\"Article 0\" />"
                "<revision><text>#REDIRECT [[Article 0]]</text></revision></page>\n")
    talk = ("  <page><title>Talk:X</title><ns>1</ns><revision><text>"
            + " ".join(_sentence(i) for i in range(20)) + "</text></revision></page>\n")
    xml = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">\n'
           + articles + redirect + talk + "</mediawiki>\n")
    (raw / "wiki").mkdir(parents=True)
    (raw / "wiki/enwiki-shortened.xml.bz2").write_bytes(bz2.compress(xml.encode()))

    packages, translations = [], []
    for i in range(30):
        long_lines = "\n".join(f" {_sentence(i * 3 + k)}" for k in range(3))
        packages.append(f"Package: pkg{i:02d}\nSource: src{i // 2:02d} (1.0-1)\nVersion: 1.0\n"
                        f"Description: tool number {i}\nDescription-md5: md5{i}\n")
        translations.append(f"Package: pkg{i:02d}\nDescription-md5: md5{i}\n"
                            f"Description-en: tool number {i}\n{long_lines}\n .\n more.\n")
    packages.append("Package: inline\nDescription: inline synopsis\n"
                    + "\n".join(f" {_sentence(k)}" for k in range(3)) + "\n")
    packages.append("Package: short\nDescription: too short\nDescription-md5: s\n")
    translations.append("Package: short\nDescription-md5: s\nDescription-en: too short\n"
                        " only five words here.\n")
    (raw / "debsum").mkdir()
    (raw / "debsum/Packages.gz").write_bytes(gzip.compress("\n".join(packages).encode()))
    (raw / "debsum/Translation-en.gz").write_bytes(gzip.compress("\n".join(translations).encode()))

    wordnet = raw / "instruct/wordnet"
    wordnet.mkdir(parents=True)
    header = "  1 This software and database is being provided to you\n"
    for pos, code in (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r")):
        lines = [f"{i:08d} 03 {code} 01 {pos}_word{i}(p) 0 000 | the {pos} meaning {i}; "
                 f'"an example {i}"  \n' for i in range(6)]
        (wordnet / f"data.{pos}").write_text(header + "".join(lines))
    (wordnet / "copyright").write_text("WordNet 3.0 licence\n")

    entries = "".join(f"ACR{i}\n     Acronym Expansion {i} [number] (tag, X{i})\n\n"
                      for i in range(8))
    vera_text = ("Intro\n\x1f\nFile: vera.info,  Node: Top,  Next: A\n\nNOTTOP\n     no\n\n"
                 "\x1f\nFile: vera.info,  Node: A,  Next: B,  Prev: 0\n\n-- A --\n\n" + entries
                 + 'ASN1\n     Abstract Syntax Notation One (OSI), "ASN.1"\n\n')
    (raw / "instruct/vera").mkdir()
    (raw / "instruct/vera/vera.info.gz").write_bytes(gzip.compress(vera_text.encode("latin-1")))
    (raw / "instruct/vera/copyright").write_text("GFDL\n")

    ding = ["# Version :: test", "Aal {m} [cook.] | Aale {pl} :: eel | eels",
            "Haus {n}; Gebäude {n} (allgemein) :: house; building"]
    ding += [f"Wort{i} {{n}} :: word {i}; term {i}" for i in range(8)]
    (raw / "instruct/trans-de-en").mkdir()
    (raw / "instruct/trans-de-en/de-en").write_text("\n".join(ding) + "\n")
    (raw / "instruct/trans-de-en/copyright").write_text("GPL-2+\n")


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raw")
    _write_raw(path)
    return path


def test_wiki_markup_is_stripped_to_prose(raw: Path) -> None:
    articles = dict(scrapers.wiki_articles(raw / "wiki/enwiki-shortened.xml.bz2"))
    assert sorted(articles) == [f"Article {a}" for a in range(6)]  # no redirect, no talk page
    text = articles["Article 0"]
    assert text.startswith("Article is a displayed text with a ref. It is plain and notable")
    for residue in ("{", "}", "[", "]", "<ref", "cite", "table cell", "list item", "Heading",
                    "Category", "caption", "trailing reference", "'''"):
        assert residue not in text


def test_passages_are_whole_sentences_within_bounds() -> None:
    text = " ".join(_sentence(i) for i in range(30))
    cut = scrapers.passages(text)
    assert cut and all(200 <= len(p) <= 600 and p.endswith(".") for p in cut)
    assert " ".join(cut) in text


def test_parsers_of_the_dictionary_and_debian_sources(raw: Path) -> None:
    described = {p.package: p for p in scrapers.package_descriptions(raw)}
    assert described["pkg03"].source == "src01"
    assert described["pkg03"].synopsis == "tool number 3"
    assert described["pkg03"].description.startswith(_sentence(9))
    assert described["pkg03"].description.endswith("more.")
    assert described["inline"].description.startswith(_sentence(0))
    assert ("noun word1", "noun", "the noun meaning 1") in list(scrapers.wordnet_glosses(raw))
    acronyms = list(scrapers.vera_acronyms(raw))
    assert ("ACR2", "Acronym Expansion 2 number") in acronyms
    assert ("ASN.1", "Abstract Syntax Notation One") in acronyms
    assert all(a != "NOTTOP" for a, _ in acronyms)
    pairs = list(scrapers.german_english(raw))
    assert ("Aal", "eel") in pairs and ("Haus", "house; building") in pairs


def test_benchmarks_have_disjoint_fixed_tests_and_seeded_train(raw: Path) -> None:
    wiki = builders.build_benchmark("wiki", raw, test_size=4, max_train=None, seed=0)
    assert wiki.kind == "lm" and len(wiki.test) == 4
    assert all(ex.source == "" and 200 <= len(ex.target) <= 600 for ex in wiki.train + wiki.test)
    debsum = builders.build_benchmark("debsum", raw, test_size=5, max_train=None, seed=0)
    assert debsum.kind == "pairs" and len(debsum.test) == 5
    assert len(debsum.train) + len(debsum.test) <= 30  # "short" dropped, a cut unit dropped
    assert ("debian-descriptions", corpora.SOURCES["debian-descriptions"].licence) in debsum.sources
    for bench in (wiki, debsum):
        assert not set(bench.train) & set(bench.test)
        again = builders.build_benchmark(bench.name, raw, test_size=len(bench.test),
                                         max_train=None, seed=0)
        other = builders.build_benchmark(bench.name, raw, test_size=len(bench.test),
                                         max_train=None, seed=1)
        assert again == bench
        assert other.test == bench.test and other.train != bench.train
        assert sorted(map(repr, other.train)) == sorted(map(repr, bench.train))


def test_instruct_mixes_all_tasks_in_every_prefix(raw: Path) -> None:
    bench = builders.build_benchmark("instruct", raw, test_size=8, max_train=None, seed=3)
    assert len(bench.test) == 8 and not set(bench.train) & set(bench.test)

    def task(ex: Example) -> str:  # the fake targets tell the task
        for name, marker in (("define", " meaning "), ("acronym", "Expansion"),
                             ("acronym", "Notation"), ("summarise", "tool number "),
                             ("summarise", "synopsis")):
            if marker in ex.target:
                return name
        return "translate"

    assert {task(ex) for ex in bench.test} == set(builders.TEMPLATES)
    assert {task(ex) for ex in benchmark.training_subset(bench, 4)} == set(builders.TEMPLATES)
    phrasings = {ex.source.split("word")[0] for ex in bench.train if "word" in ex.source}
    assert len(phrasings) > 1  # several templates per task


def test_training_subsets_are_nested_and_checked(raw: Path) -> None:
    bench = builders.build_benchmark("debsum", raw, test_size=5, max_train=None, seed=0)
    for n in (1, 2, 4, 8):
        assert set(benchmark.training_subset(bench, n)) <= set(
            benchmark.training_subset(bench, 2 * n))
    capped = builders.build_benchmark("debsum", raw, test_size=5, max_train=6, seed=0)
    assert capped.train == bench.train[:6]
    with pytest.raises(ValueError, match=r"'debsum'.*size 7.*has 6 examples"):
        benchmark.training_subset(capped, 7)


def test_write_and_read_round_trip_and_malformed_files(raw: Path, tmp_path: Path) -> None:
    bench = builders.build_benchmark("instruct", raw, test_size=4, max_train=10, seed=0)
    path = tmp_path / "instruct.jsonl"
    benchmark.write_benchmark(bench, path)
    header = json.loads(path.read_text().splitlines()[0])
    assert header["counts"] == {"train": 10, "test": 4} and header["seed"] == 0
    assert {s["name"] for s in header["sources"]} == {"wordnet", "vera", "trans-de-en",
                                                       "debian-descriptions"}
    assert benchmark.read_benchmark(path) == bench
    lines = path.read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines[:3] + ["{not json"] + lines[4:]) + "\n")
    with pytest.raises(benchmark.BenchmarkFileError, match=rf"{broken}:4"):
        benchmark.read_benchmark(broken)
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines[:5]) + "\n")
    with pytest.raises(benchmark.BenchmarkFileError, match="truncated"):
        benchmark.read_benchmark(truncated)
    headless = tmp_path / "headless.jsonl"
    headless.write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(benchmark.BenchmarkFileError, match=rf"{headless}:1: expected a .* header"):
        benchmark.read_benchmark(headless)


def test_corpus_texts_are_deterministic_and_hold_out_tests(raw: Path) -> None:
    texts = builders.corpus_texts(raw, ["wiki", "debsum", "instruct"])
    assert texts == builders.corpus_texts(raw, ["wiki", "debsum", "instruct"])
    assert len(texts) == len(set(texts))
    assert any(t.startswith("noun word1: ") for t in texts)
    bench = builders.build_benchmark("wiki", raw, test_size=2, max_train=None, seed=0)
    held = builders.corpus_texts(raw, ["wiki"], exclude=[bench])
    assert not set(ex.target for ex in bench.test) & set(held)
    assert set(ex.target for ex in bench.train) <= set(held)


def test_hub_benchmark_from_a_local_directory(tmp_path: Path, monkeypatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder = tmp_path / "tiny"
    folder.mkdir()
    rows = [{"inputs": f"question {i}", "targets": f"answer {i}"} for i in range(6)]
    (folder / "train.json").write_text("\n".join(json.dumps(r) for r in rows[:5]))
    (folder / "test.json").write_text(json.dumps(rows[5]))
    bench = hub.load_hub_benchmark(str(folder), split_train="train", split_test="test",
                                   source_field="inputs", target_field="targets", seed=1,
                                   max_train=4, cache_dir=str(tmp_path / "cache"))
    assert bench.kind == "pairs" and len(bench.train) == 4
    assert bench.test == (Example("question 5", "answer 5"),)
    assert set(bench.train) <= {Example(r["inputs"], r["targets"]) for r in rows[:5]}
    lm = hub.load_hub_benchmark(str(folder), split_train="train", split_test="test",
                                source_field=None, target_field="targets",
                                cache_dir=str(tmp_path / "cache"))
    assert lm.kind == "lm" and lm.test == (Example("", "answer 5"),)
    saved = tmp_path / "saved"
    datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache")).save_to_disk(saved)
    from_disk = hub.load_hub_benchmark(str(saved), split_train="train", split_test="test",
                                       source_field="inputs", target_field="targets", seed=1,
                                       max_train=4)
    assert (from_disk.train, from_disk.test) == (bench.train, bench.test)
    with pytest.raises(ValueError, match="no field 'question'"):
        hub.load_hub_benchmark(str(folder), split_train="train", split_test="test",
                               source_field="question", target_field="targets",
                               cache_dir=str(tmp_path / "cache"))


def test_missing_sources_raise_source_unavailable(raw: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(corpora.SourceUnavailable, match=r"'wikipedia'.*fetch --dest"):
        builders.build_benchmark("wiki", tmp_path / "empty", test_size=1, max_train=None, seed=0)
    dest = tmp_path / "dest"
    with pytest.raises(corpora.SourceUnavailable,
                       match=r"'debian-descriptions'.*/nonexistent/apt-get.*fetch --dest"):
        corpora.fetch(dest, ["debsum"], apt_get="/nonexistent/apt-get", log=lambda _: None)
    with pytest.raises(corpora.SourceUnavailable, match=r"'wikipedia'.*/nonexistent/python"):
        corpora.fetch(dest, ["wiki"], python="/nonexistent/python", log=lambda _: None)
    assert not any(dest.iterdir())  # nothing half-written
    # Sources already present: nothing is fetched, so no network and no apt-get are needed.
    assert corpora.fetch(raw, apt_get="/nonexistent/apt-get", python="/nonexistent/python",
                         log=lambda _: None) == []
    assert corpora.main(["fetch", "--dest", str(raw), "--only", "wiki,instruct"]) == 0
    assert corpora.main(["fetch", "--dest", str(dest), "--only", "nope"]) == 1
    assert "unknown benchmark" in capsys.readouterr().err
