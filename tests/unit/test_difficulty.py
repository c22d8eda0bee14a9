"""The difficulty of a loss table: which model the cheap rankings name, and whether it is the best."""

from __future__ import annotations

import numpy as np
import pytest

from lensllm.curves.difficulty import difficulty, difficulty_frame, difficulty_markdown, main
from lensllm.curves.losstable import LossTable, write_losstable

SIZES = (0, 8, 16, 32, 64, 128)


def table(rows: dict[str, list[float]]) -> LossTable:
    return LossTable("toy", tuple(rows), SIZES, np.array(list(rows.values())), np.full(len(rows), 1e6), ("f",) * len(rows))


# flat: best zero-shot, flattens; steep: worst zero-shot, best from 64 on; mid: best at 16 (= 128 / 8)
TOY = {
    "flat": [3.0, 2.95, 2.9, 2.88, 2.87, 2.86],
    "mid": [3.2, 3.0, 2.8, 2.75, 2.7, 2.65],
    "steep": [4.0, 3.5, 3.0, 2.8, 2.6, 2.59],
}


def test_the_cheap_bests_and_the_target_best_are_read_off_their_columns():
    found = difficulty(table(TOY))
    assert (found.target, found.early) == (128, 16)
    assert (found.zero_shot_best, found.early_best, found.target_best) == ("flat", "mid", "steep")
    assert found.zero_shot_misleads and found.crosses_late
    expected = 100 * np.corrcoef([3.0, 3.2, 4.0], [2.86, 2.65, 2.59])[0, 1]
    assert found.zero_shot_pearcorr == pytest.approx(expected)
    assert found.near_ties == ()  # mid is 2.3% above the best


def test_near_ties_are_the_other_candidates_within_the_tie_of_the_best():
    assert difficulty(table(TOY), tie=0.03).near_ties == ("mid",)
    assert difficulty(table(TOY), tie=0.2).near_ties == ("flat", "mid")


def test_a_zoo_whose_zero_shot_ranking_holds_neither_misleads_nor_crosses():
    ranked = {"a": [2.0, 1.9, 1.8, 1.7, 1.6, 1.5], "b": [3.0, 2.9, 2.8, 2.7, 2.6, 2.5]}
    found = difficulty(table(ranked))
    assert not found.zero_shot_misleads and not found.crosses_late
    assert found.zero_shot_pearcorr == pytest.approx(100.0)


def test_a_smaller_target_moves_the_early_size_and_a_table_too_short_is_named():
    assert difficulty(table(TOY), target=64).early == 8
    with pytest.raises(ValueError, match="toy: no fine-tuned size at or below target / 8 = 4"):
        difficulty(table(TOY), target=32)


def test_the_table_and_the_command_line_say_the_same(tmp_path, capsys):
    found = difficulty(table(TOY))
    markdown = difficulty_markdown([found])
    assert "| toy | flat (not the best) | mid (not the best) (16) | steep (128) | " in markdown
    frame = difficulty_frame([found])
    assert frame.loc[0, "zero_shot_best"] == "flat" and bool(frame.loc[0, "crosses_late"])
    write_losstable(table(TOY), tmp_path / "toy.tsv")
    assert main([str(tmp_path / "toy.tsv")]) == 0
    assert capsys.readouterr().out == markdown
