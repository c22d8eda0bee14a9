import numpy as np
import pytest

from lensllm.curves.losstable import LossTableError, read_losstable, write_losstable


def test_published_table_reads_sizes_from_the_header(published_dir):
    table = read_losstable(published_dir / "flan.csv")
    assert table.benchmark == "flan"
    assert len(table.models) == 30
    assert table.sizes == (0,) + tuple(200 * 2**i for i in range(14))
    assert table.params[table.models.index("gpt2")] == 124439808
    assert table.train_sizes(1600) == (200, 400, 800, 1600)


def test_round_trip_as_tsv(published_dir, tmp_path):
    table = read_losstable(published_dir / "gigaword.csv")
    write_losstable(table, tmp_path / "gigaword.tsv")
    again = read_losstable(tmp_path / "gigaword.tsv")
    assert again.models == table.models and again.sizes == table.sizes
    np.testing.assert_allclose(again.losses, table.losses, rtol=1e-9)
    assert again.families == table.families


def _broken(published_dir, tmp_path, edit):
    lines = (published_dir / "flan.csv").read_text().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    edit(header, rows)
    path = tmp_path / "flan.csv"
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return path


def _drop_column(name):
    def edit(header, rows):
        i = header.index(name)
        for r in [header, *rows]:
            del r[i]

    return edit


@pytest.mark.parametrize(
    "edit, expected",
    [
        (_drop_column("size"), "missing column 'size'"),
        (_drop_column("0"), "missing column '0'"),
        (lambda h, rows: rows[2].__setitem__(3, "n/a"), "row 4 (model 'MBZUAI/LaMini-GPT-1.5B'), column '400': loss 'n/a' is not a number"),
        (lambda h, rows: rows[0].__setitem__(5, "-3.2"), "row 2 (model 'MBZUAI/LaMini-GPT-124M'), column '1600': loss '-3.2' must be a positive"),
        (lambda h, rows: rows[0].__setitem__(5, ""), "row 2 (model 'MBZUAI/LaMini-GPT-124M'), column '1600'"),
        (lambda h, rows: rows.append(list(rows[1])), "row 32, column 'config name': model 'MBZUAI/LaMini-GPT-774M' duplicates row 3"),
        (lambda h, rows: h.__setitem__(4, "eight hundred"), "column 'eight hundred' is neither a data size"),
        (lambda h, rows: h.__setitem__(4, "200"), "column '200' appears more than once in the header"),
        (lambda h, rows: (h.__setitem__(3, "800"), h.__setitem__(4, "400")),
         "data-size columns must be distinct and increasing, found ['0', '200', '800', '400', "),
        (lambda h, rows: rows[4].__setitem__(0, " "), "row 6, column 'config name': empty model name"),
        (lambda h, rows: rows.clear(), ": no model rows"),
    ],
)
def test_bad_input_names_file_row_and_column(published_dir, tmp_path, edit, expected):
    """Each check of `read_losstable`, triggered by one edit of the published FLAN table."""
    path = _broken(published_dir, tmp_path, edit)
    with pytest.raises(LossTableError) as err:
        read_losstable(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_a_table_with_fewer_than_two_data_sizes_is_refused(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("config name,0,200,size,family\nm,3.0,2.5,10,f\n")
    with pytest.raises(LossTableError, match=r"short\.csv: needs zero-shot plus at least two data sizes, found \['0', '200'\]"):
        read_losstable(path)
