"""The user's own data: local JSONL, JSON, CSV, TSV and Parquet files -> a benchmark, offline."""

from __future__ import annotations

import csv
import json
import logging
import re
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

from lensllm.data.benchmark import (Benchmark, BenchmarkFileError, Example, read_benchmark,
                                    training_subset, write_benchmark)
from lensllm.data.user import USER_LICENCE, UserDataError, load_user_benchmark

pytest.importorskip("datasets")  # imported once here; `load_user_benchmark` imports it lazily

REPO = Path(__file__).resolve().parents[2]
FIELDS = ["prompt", "answer", "passage", "id"]


@pytest.fixture(autouse=True)
def offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _rows(n: int, start: int = 0) -> list[dict]:
    return [{"prompt": f"Question {i}: what is {i} plus one?", "answer": f"{i + 1}, surely",
             "passage": f"Passage {i} says that \"{i}\" comes before {i + 1}.", "id": i}
            for i in range(start, start + n)]


def _write(path: Path, rows: list[dict]) -> Path:
    """`rows` in the format of `path`'s extension."""
    suffix = path.suffix
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    elif suffix in (".csv", ".tsv"):
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]),
                                    delimiter="\t" if suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".parquet":
        pd = pytest.importorskip("pandas")
        pytest.importorskip("pyarrow")
        pd.DataFrame(rows).to_parquet(path)
    else:
        path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def _pairs(path: Path, **kwargs) -> Benchmark:
    kwargs.setdefault("test_size", 5)
    return load_user_benchmark(path, name="mine", source_field="prompt", target_field="answer",
                               **kwargs)


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".tsv", ".parquet"])
def test_each_format_gives_the_same_benchmark(tmp_path: Path, suffix: str) -> None:
    rows = _rows(30)
    bench = _pairs(_write(tmp_path / f"mine{suffix}", rows), seed=2)
    reference = _pairs(_write(tmp_path / "reference.jsonl", rows), seed=2)
    assert (bench.name, bench.kind, bench.seed) == ("mine", "pairs", 2)
    assert (bench.train, bench.test) == (reference.train, reference.test)
    assert len(bench.test) == 5 and len(bench.train) == 25
    assert set(bench.train) | set(bench.test) == {Example(r["prompt"], r["answer"]) for r in rows}
    assert bench.sources == ((str(tmp_path / f"mine{suffix}"), USER_LICENCE),)
    assert "licence is the user's" in USER_LICENCE
    lm = load_user_benchmark(tmp_path / f"mine{suffix}", name="lm", text_field="passage",
                             test_size=3, seed=2)
    assert lm.kind == "lm" and len(lm.test) == 3 and len(lm.train) == 27
    assert {ex.source for ex in lm.train + lm.test} == {""}
    assert {ex.target for ex in lm.train + lm.test} == {r["passage"] for r in rows}


def test_csv_and_tsv_keep_the_text_as_written(tmp_path: Path) -> None:
    odd = ["007", "1.50", "NA", "null", 'say "hi", then\nleave', "x\ty"]
    rows = [{"prompt": f"p{i}", "answer": text} for i, text in enumerate(odd)]
    for suffix in (".csv", ".tsv"):
        bench = _pairs(_write(tmp_path / f"odd{suffix}", rows), test_size=1)
        assert sorted(ex.target for ex in bench.train + bench.test) == sorted(odd), suffix
    numbers = _pairs(_write(tmp_path / "numbers.jsonl", [{"prompt": "a", "answer": 5},
                                                         {"prompt": "b", "answer": 1.5},
                                                         {"prompt": "c", "answer": True}]),
                     test_size=1)
    assert sorted(ex.target for ex in numbers.train + numbers.test) == ["1.5", "5", "true"]


def test_seeded_split_is_deterministic_and_nested(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.jsonl", _rows(40))
    bench = _pairs(path, test_size=8, seed=7)
    again = _pairs(path, test_size=8, seed=7)
    assert bench == again
    write_benchmark(bench, tmp_path / "a.jsonl")
    write_benchmark(again, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert read_benchmark(tmp_path / "a.jsonl") == bench
    other = _pairs(path, test_size=8, seed=8)
    assert other.test != bench.test and other.train != bench.train
    assert not set(bench.test) & set(bench.train)
    small, large = training_subset(bench, 8), training_subset(bench, 16)
    assert large[:8] == small and len(set(large)) == 16
    cut = _pairs(path, test_size=8, seed=7, max_train=10)
    assert cut.test == bench.test and cut.train == bench.train[:10]
    assert training_subset(cut, 10) == cut.train
    with pytest.raises(ValueError, match="size 11; its train split has 10"):
        training_subset(cut, 11)


def test_skipped_empty_texts_and_duplicates_of_test_examples_are_dropped(tmp_path: Path,
                                                                          caplog) -> None:
    rows = _rows(20)
    rows += [dict(r) for r in rows[:10]]  # each of the first ten twice
    rows += [{"prompt": "   ", "answer": "x"}, {"prompt": "p", "answer": ""},
             {"prompt": "q", "answer": None}]
    path = _write(tmp_path / "dups.jsonl", rows)
    with caplog.at_level(logging.INFO, logger="lensllm.data.user"):
        bench = _pairs(path, test_size=10, seed=0, skip_bad_rows=True)
    assert "skipped 3 of 33 rows (skip_bad_rows)" in caplog.text
    assert bench.skipped_rows == ((str(path), 3),)
    assert len(set(bench.test)) == 10  # distinct test examples
    assert not set(bench.test) & set(bench.train)
    duplicated = {Example(r["prompt"], r["answer"]) for r in rows[:10]}
    in_test = len(duplicated & set(bench.test))
    assert in_test == 6  # with seed 0: their second copies are not trained on
    assert "dropped 6 training rows identical to a test example" in caplog.text
    assert len(bench.train) == 30 - 10 - 6
    assert duplicated - set(bench.test) <= set(bench.train)


def test_a_second_test_file(tmp_path: Path, caplog) -> None:
    train = _write(tmp_path / "train.jsonl", _rows(30))
    test = _write(tmp_path / "test.csv", _rows(6, start=27))  # 27, 28, 29 are also in train
    with caplog.at_level(logging.INFO, logger="lensllm.data.user"):
        bench = _pairs(train, test_file=test, test_size=None, seed=1)
    expected_test = tuple(Example(r["prompt"], r["answer"]) for r in _rows(6, start=27))
    assert bench.test == expected_test  # the whole file, in its order
    assert len(bench.train) == 27 and not set(bench.train) & set(bench.test)
    assert "dropped 3 training rows identical to a test example of" in caplog.text
    assert bench.sources == ((str(train), USER_LICENCE), (str(test), USER_LICENCE))
    cut = _pairs(train, test_file=test, test_size=2, seed=1)
    assert cut.test == expected_test[:2] and len(cut.train) == 28  # only 27, 28 are held out
    assert _pairs(train, test_file=test, test_size=None, seed=1) == bench


def _error(path_or_callable, match: str, **kwargs) -> str:
    with pytest.raises(UserDataError) as info:
        if callable(path_or_callable):
            path_or_callable()
        else:
            _pairs(path_or_callable, **kwargs)
    assert isinstance(info.value, ValueError) and isinstance(info.value, BenchmarkFileError)
    message = str(info.value)
    assert re.search(match, message), message
    return message


def test_bad_files_name_the_file_and_key(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    _error(missing, rf"{re.escape(str(missing))} \(key 'train_file'\): no such file")
    good = _write(tmp_path / "good.jsonl", _rows(20))
    _error(good, rf"{re.escape(str(missing))} \(key 'test_file'\): no such file", test_file=missing)
    text = tmp_path / "data.txt"
    text.write_text("hello\n")
    _error(text, rf"{re.escape(str(text))} .*unknown extension '.txt'; expected one of "
                 r"\.jsonl, \.json, \.csv, \.tsv, \.parquet")
    _error(tmp_path, rf"{re.escape(str(tmp_path))} .*not a file")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _error(empty, rf"{re.escape(str(empty))} .*empty file")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "a", "answer": "b"}\n\n{"prompt": "c", "answer": \n')
    _error(broken, rf"{re.escape(str(broken))} \(key 'train_file'\): 1 of its 2 rows cannot be "
                   r"used.*\n  line 3: not JSON \(Expecting value\)$")
    not_objects = tmp_path / "lists.jsonl"
    not_objects.write_text('{"prompt": "a", "answer": "b"}\n[1, 2]\n')
    _error(not_objects, rf"{re.escape(str(not_objects))} .*\n  line 2: not a JSON object "
                        r"\(got \[1, 2\]\)$")
    array = tmp_path / "broken.json"
    array.write_text('[{"prompt": "a", "answer": "b"},\n {"prompt": "c", "answer": }]')
    _error(array, rf"{re.escape(str(array))} \(key 'train_file'\): cannot be read as json: "
                  r"line 2: not JSON")
    parquet = tmp_path / "broken.parquet"
    parquet.write_bytes(b"PAR1 this is not a parquet file")
    _error(parquet, rf"{re.escape(str(parquet))} \(key 'train_file'\): cannot be read as parquet")
    bad_csv = tmp_path / "broken.csv"
    bad_csv.write_text('prompt,answer\n"a,b\n')
    _error(bad_csv, rf"{re.escape(str(bad_csv))} \(key 'train_file'\): cannot be read as csv")
    nested = _write(tmp_path / "nested.json", [{"prompt": "a", "answer": ["b", "c"]}] * 3)
    _error(nested, rf"{re.escape(str(nested))} \(key 'train_file'\): 3 of its 3 rows cannot be "
                   r"used.*\n  record 1: field 'answer' \(key 'target_field'\) holds list "
                   r'\["b", "c"\], not text\n')
    blank = _write(tmp_path / "blank.jsonl", [{"prompt": " ", "answer": "b"}] * 3)
    _error(blank, rf"{re.escape(str(blank))} .*\n  line 1: field 'prompt' \(key 'source_field'\) "
                  r"is empty\n")
    _error(blank, rf"{re.escape(str(blank))} .*no example with a non-empty 'prompt' and 'answer'",
           skip_bad_rows=True)


def test_missing_fields_and_field_forms_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.csv", _rows(20))
    message = _error(lambda: load_user_benchmark(path, name="x", source_field="question",
                                                 target_field="answer", test_size=2),
                     rf"{re.escape(str(path))} \(key 'train_file'\): no field 'question' "
                     r"\(key 'source_field'\)")
    assert str(FIELDS) in message
    _error(lambda: load_user_benchmark(path, name="x", text_field="body", test_size=2),
           rf"{re.escape(str(path))} .*no field 'body' \(key 'text_field'\); it has")
    test = _write(tmp_path / "test.jsonl", [{"prompt": "p", "reply": "r"}])
    _error(lambda: _pairs(path, test_file=test),
           rf"{re.escape(str(test))} \(key 'test_file'\): no field 'answer' "
           r"\(key 'target_field'\); it has \['prompt', 'reply'\]")
    for kwargs in ({}, {"source_field": "prompt"}, {"target_field": "answer"},
                   {"source_field": "prompt", "target_field": "answer", "text_field": "passage"}):
        _error(lambda: load_user_benchmark(path, name="x", test_size=2, **kwargs),
               rf"{re.escape(str(path))}: give either the keys 'source_field' and 'target_field'"
               r".* or 'text_field' alone")


def test_too_few_examples_and_overlapping_test_splits(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.parquet", _rows(30))
    assert len(_pairs(path, test_size=10, min_train=20).train) == 20
    _error(path, rf"key 'sizes' needs 21 training examples, {re.escape(str(path))} has only 20 "
                 r"after the test split \(10 examples\)", test_size=10, min_train=21)
    _error(lambda: load_user_benchmark(path, name="x", text_field="passage", test_size=10,
                                       min_train=64, min_train_key="budget"),
           rf"key 'budget' needs 64 training examples, {re.escape(str(path))} has only 20")
    _error(path, rf"{re.escape(str(path))} .*key 'test_size' asks for 31 test examples, but the "
                 r"file has only 30 distinct usable examples", test_size=31)
    _error(path, r"key 'max_train' \(8\) is below the 16 training examples that key 'sizes' needs",
           test_size=2, max_train=8, min_train=16)
    _error(path, r"key 'test_size' must be a positive integer", test_size=0)
    test = _write(tmp_path / "test.jsonl", _rows(10, start=15))  # 15..24 are also in train
    _error(path, rf"key 'sizes' needs 25 training examples, {re.escape(str(path))} has only 20 "
                 rf"after the test split \(10 examples from {re.escape(str(test))}\) and dropping "
                 r"10 rows identical to a test example", test_file=test, test_size=None,
           min_train=25)
    _error(path, rf"{re.escape(str(path))} \(key 'test_file'\) is also the train_file: the test "
                 r"split would overlap the training subsets", test_file=path)


def test_the_build_benchmark_script_builds_a_user_benchmark(tmp_path: Path, monkeypatch) -> None:
    path = _write(tmp_path / "mine.tsv", _rows(30))
    monkeypatch.setattr("lensllm.logs.log_to", lambda log: None)
    output = tmp_path / "results" / "data" / "mine.jsonl"
    output.parent.mkdir(parents=True)
    user = {"train_file": str(path), "source_field": "prompt", "target_field": "answer",
            "min_train": 16}
    snakemake = SimpleNamespace(
        wildcards=SimpleNamespace(benchmark="mine"), log=[str(tmp_path / "log.txt")],
        output=[str(output)], params=SimpleNamespace(
            user=user, hub=None, sources_dir=None, test_size=6, max_train=20, seed=3))
    runpy.run_path(str(REPO / "workflow/scripts/build_benchmark.py"),
                   init_globals={"snakemake": snakemake})
    written = read_benchmark(output)
    assert written == load_user_benchmark(path, name="mine", source_field="prompt",
                                          target_field="answer", test_size=6, max_train=20, seed=3)
    assert (len(written.train), len(written.test)) == (20, 6)
    snakemake.params.user = {**user, "test_size": 4, "max_train": None}  # the dict's keys win
    runpy.run_path(str(REPO / "workflow/scripts/build_benchmark.py"),
                   init_globals={"snakemake": snakemake})
    rewritten = read_benchmark(output)
    assert (rewritten.name, len(rewritten.train), len(rewritten.test)) == ("mine", 26, 4)


# --------------------------------------------------------------------------- row by row


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


GOOD = [json.dumps(r) for r in _rows(12)]


def test_a_jsonl_row_without_the_target_stops_the_load_naming_file_line_and_field(
        tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "mine.jsonl", GOOD[:3] + ['{"prompt": "no answer here"}'] + GOOD[3:])
    message = _error(path, "is missing")
    assert message == (
        f"{path} (key 'train_file'): 1 of its 13 rows cannot be used; fix them, or set "
        f"user_data.mine.skip_bad_rows: true to skip them:\n"
        f"  line 4: field 'answer' (key 'target_field') is missing")
    test = _jsonl(tmp_path / "test.jsonl", ['{"answer": "a"}', GOOD[0]])  # the test file too
    good = _jsonl(tmp_path / "good.jsonl", GOOD)
    _error(good, rf"^{re.escape(str(test))} \(key 'test_file'\): 1 of its 2 rows cannot be used.*"
                 r"\n  line 1: field 'prompt' \(key 'source_field'\) is missing$",
           test_file=test, test_size=None)
    lm = _jsonl(tmp_path / "lm.jsonl", ['{"passage": "a"}', '{"id": 3}', '{"passage": "b"}'])
    _error(lambda: load_user_benchmark(lm, name="corpus", text_field="passage", test_size=1),
           rf"^{re.escape(str(lm))} \(key 'train_file'\): 1 of its 3 rows cannot be used; fix "
           r"them, or set user_data\.corpus\.skip_bad_rows: true to skip them:\n  line 2: field "
           r"'passage' \(key 'text_field'\) is missing$")


def test_empty_null_and_non_text_fields_are_named(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "mine.jsonl", [
        GOOD[0], '{"prompt": "q", "answer": ""}', '{"prompt": "  \\t ", "answer": "a"}', GOOD[1],
        '{"prompt": "q", "answer": null}', '{"prompt": {"a": 1}, "answer": "a"}',
        '{"prompt": "", "answer": " "}'])
    message = _error(path, "cannot be used")
    assert message.splitlines()[1:] == [
        "  line 2: field 'answer' (key 'target_field') is empty",
        "  line 3: field 'prompt' (key 'source_field') is empty",
        "  line 5: field 'answer' (key 'target_field') is null",
        "  line 6: field 'prompt' (key 'source_field') holds dict {\"a\": 1}, not text",
        "  line 7: field 'prompt' (key 'source_field') is empty; field 'answer' (key "
        "'target_field') is empty"]
    assert message.startswith(f"{path} (key 'train_file'): 5 of its 7 rows cannot be used")


def test_a_line_that_is_not_json_is_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_bytes("\n".join(GOOD[:2] + ['{"prompt": "q", "answer": "a",}', "", "plain text",
                                           GOOD[2]]).encode() + b"\n\xff\xfe{}\n")
    message = _error(path, "cannot be used")
    assert message.splitlines()[1:] == [
        "  line 3: not JSON (Expecting property name enclosed in double quotes)",
        "  line 5: not JSON (Expecting value)",
        "  line 7: not UTF-8 text"]  # line 4 is blank: no row, but counted as a line
    assert "3 of its 6 rows" in message


def test_a_csv_row_without_a_value_is_named_by_its_data_row(tmp_path: Path) -> None:
    rows = [{"prompt": f"p{i}", "answer": f"a{i}"} for i in range(6)]
    rows[2]["answer"] = ""
    rows[4]["prompt"] = "   "
    for suffix in (".csv", ".tsv"):
        path = _write(tmp_path / f"mine{suffix}", rows)
        message = _error(path, "cannot be used")
        assert message == (
            f"{path} (key 'train_file'): 2 of its 6 rows cannot be used (data rows counted from 1 "
            f"below the header); fix them, or set user_data.mine.skip_bad_rows: true to skip "
            f"them:\n"
            f"  data row 3: field 'answer' (key 'target_field') is empty\n"
            f"  data row 5: field 'prompt' (key 'source_field') is empty"), suffix
    short = tmp_path / "short.csv"
    short.write_text("prompt,answer\np0,a0\np1\np2,a2\n")  # row 2 lacks its answer
    _error(short, r"\n  data row 2: field 'answer' \(key 'target_field'\) is empty$")
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    parquet = tmp_path / "mine.parquet"
    pd.DataFrame({"prompt": ["p0", "p1", None], "answer": ["a0", None, "a2"]}).to_parquet(parquet)
    assert _error(parquet, "cannot be used").splitlines()[1:] == [
        "  row 2: field 'answer' (key 'target_field') is null",
        "  row 3: field 'prompt' (key 'source_field') is null"]


def test_the_error_lists_the_first_five_bad_rows_then_how_many_more(tmp_path: Path) -> None:
    lines = list(GOOD)
    for i in range(8):  # lines 2, 4, ..., 16 lack the answer
        lines.insert(2 * i + 1, json.dumps({"prompt": f"bad {i}"}))
    message = _error(_jsonl(tmp_path / "mine.jsonl", lines), "cannot be used")
    body = message.splitlines()[1:]
    assert body == [f"  line {n}: field 'answer' (key 'target_field') is missing"
                    for n in (2, 4, 6, 8, 10)] + ["  and 3 more"]
    assert "8 of its 20 rows cannot be used" in message
    five = _jsonl(tmp_path / "five.jsonl", lines[:10])  # 5 bad rows: all listed, no "more"
    assert not _error(five, "cannot be used").endswith("more")


def test_skip_bad_rows_loads_logs_each_and_records_the_count(tmp_path: Path, caplog) -> None:
    bad = ['{"prompt": "q"}', "not json", '{"prompt": "q", "answer": "  "}']
    path = _jsonl(tmp_path / "mine.jsonl", GOOD[:4] + bad + GOOD[4:])
    clean = _jsonl(tmp_path / "clean.jsonl", GOOD)
    with caplog.at_level(logging.INFO, logger="lensllm.data.user"):
        bench = _pairs(path, test_size=3, seed=1, skip_bad_rows=True)
    reference = _pairs(clean, test_size=3, seed=1)  # the good rows alone
    assert (bench.train, bench.test) == (reference.train, reference.test)
    assert bench.skipped_rows == ((str(path), 3),)
    for line, why in ((5, "field 'answer' (key 'target_field') is missing"),
                      (6, "not JSON (Expecting value)"),
                      (7, "field 'answer' (key 'target_field') is empty")):
        assert f"{path} (key 'train_file'): skipped line {line} (skip_bad_rows): {why}" in caplog.text
    assert "skipped 3 of 15 rows (skip_bad_rows)" in caplog.text
    test = _jsonl(tmp_path / "test.jsonl", GOOD[10:] + ['{"answer": "a"}'])
    both = _pairs(path, test_file=test, test_size=None, skip_bad_rows=True)
    assert both.skipped_rows == ((str(path), 3), (str(test), 1))
    assert _pairs(clean, skip_bad_rows=True).skipped_rows == ()  # nothing skipped, nothing said

    written = tmp_path / "results" / "mine.jsonl"
    written.parent.mkdir()
    write_benchmark(bench, written)
    header = json.loads(written.read_text().splitlines()[0])
    assert header["skipped_rows"] == [{"file": str(path), "rows": 3}]
    assert read_benchmark(written) == bench and read_benchmark(written).skipped_rows == (
        (str(path), 3),)
    write_benchmark(_pairs(clean, test_size=3, seed=1), written)
    assert "skipped_rows" not in json.loads(written.read_text().splitlines()[0])  # as before
    header["format"] = "lensllm-benchmark/1"
    header["skipped_rows"] = [{"file": str(path)}]  # no count
    lines = written.read_text().splitlines()
    written.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    with pytest.raises(BenchmarkFileError, match="skipped_rows"):
        read_benchmark(written)


def test_an_old_benchmark_file_without_skipped_rows_is_read(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    old.write_text(
        '{"format": "lensllm-benchmark/1", "name": "mine", "kind": "pairs", "seed": 0, "counts": '
        '{"train": 1, "test": 1}, "sources": [{"name": "x.jsonl", "licence": "theirs"}]}\n'
        '{"split": "train", "source": "q", "target": "a"}\n'
        '{"split": "test", "source": "p", "target": "b"}\n')
    bench = read_benchmark(old)
    assert bench.skipped_rows == () and bench.train == (Example("q", "a"),)


def test_the_recommendation_says_how_many_rows_were_skipped(tmp_path: Path) -> None:
    import dataclasses

    import numpy as np

    from lensllm.curves.losstable import LossTable
    from lensllm.selection.recommend import recommend, recommendation_markdown

    path = _jsonl(tmp_path / "mine.jsonl", GOOD + ['{"prompt": "q"}', "{", '{"answer": "a"}'])
    written = tmp_path / "mine-benchmark.jsonl"
    write_benchmark(_pairs(path, test_size=3, skip_bad_rows=True), written)
    sizes = (0, 16, 32, 64, 128)
    losses = np.array([[5.0] + [(2.0 + o) * s ** -0.1 for s in sizes[1:]] for o in (0.0, 0.5)])
    table = LossTable("mine", ("m0", "m1"), sizes, losses, np.full(2, 1e6), ("x", "x"))
    flops = {(m, s): 1e9 * s for m in table.models for s in sizes}
    base = recommend(table, flops, 20_000, 128, ["AtS"], "AtS")
    assert "skip_bad_rows" not in recommendation_markdown([base])
    r = dataclasses.replace(base, skipped_rows=read_benchmark(written).skipped_rows)
    text = recommendation_markdown([r])
    assert f"\n3 rows of {path} were skipped (skip_bad_rows).\n" in text
    one = dataclasses.replace(base, skipped_rows=(("a.csv", 1),))
    assert "\n1 row of a.csv was skipped (skip_bad_rows).\n" in recommendation_markdown([one])
