import hashlib

import pytest

from lensllm.curves.losstable import LossTableError, read_losstable
from lensllm.curves.published import CURVES_SHA256, ChecksumError, fetch_curves


def test_pinned_checksums_are_those_of_the_shared_copies(published_dir):
    for benchmark in ("flan", "gigaword"):
        digest = hashlib.sha256((published_dir / f"{benchmark}.csv").read_bytes()).hexdigest()
        assert digest == CURVES_SHA256[benchmark]


def test_download_checks_the_sha256_and_keeps_the_file(published_dir, tmp_path):
    output = tmp_path / "losses" / "flan.tsv"
    table = fetch_curves("flan", output, base_url=published_dir.as_uri())
    assert len(table.models) == 30
    assert (tmp_path / "losses" / "downloads" / "flan.csv").read_bytes() == (published_dir / "flan.csv").read_bytes()
    assert read_losstable(output).models == table.models


def test_a_wrong_sha256_stops_before_anything_is_written(published_dir, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "flan.csv").write_text((published_dir / "flan.csv").read_text().replace("4.891325951", "4.891325952"))
    output = tmp_path / "losses" / "flan.tsv"
    with pytest.raises(ChecksumError, match=r"flan\.csv: sha256 [0-9a-f]{64} does not match the pinned ead24af8"):
        fetch_curves("flan", output, base_url=mirror.as_uri())
    assert not output.exists() and not (tmp_path / "losses" / "downloads" / "flan.csv").exists()


def test_unreachable_download_suggests_curves_dir(tmp_path):
    with pytest.raises(ConnectionError, match="curves_dir"):
        fetch_curves("flan", tmp_path / "flan.tsv", base_url=(tmp_path / "nowhere").as_uri())


def test_curves_dir_is_read_and_validated(published_dir, tmp_path):
    table = fetch_curves("gigaword", tmp_path / "gigaword.tsv", curves_dir=published_dir)
    assert table.benchmark == "gigaword"
    with pytest.raises(FileNotFoundError, match="wmt19.csv: no curves file for benchmark 'wmt19'"):
        fetch_curves("wmt19", tmp_path / "wmt19.tsv", curves_dir=published_dir)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "flan.csv").write_text("config name,0,200,400,size,family\nm,3,2,x,10,f\n")
    with pytest.raises(LossTableError, match="row 2 \\(model 'm'\\), column '400'"):
        fetch_curves("flan", tmp_path / "flan.tsv", curves_dir=tmp_path / "bad")
