"""Configuration errors stop a run at start, through the real command line (dry-runs), with a message
that names the key, the sheet, the row or the model at fault."""

from __future__ import annotations

import pytest

from conftest import QUICK, REPO, run_snakemake

PAPER = str(REPO / "config" / "paper.yaml")


def _dry_run_error(workdir, *args):
    """Run `snakemake -n` and return its output, which must be a failure."""
    result = run_snakemake(workdir, "-n", *args, check=False)
    assert result.returncode != 0, result.stdout[-2000:]
    return result.stdout + result.stderr


def _sheet(path, *rows):
    path.write_text("\n".join("\t".join(row) for row in rows) + "\n")
    return path


@pytest.mark.parametrize(
    "base, overrides, expected",
    [
        (PAPER, "ratios: [8, 7, 12]", "configuration: key 'ratios': [7, 12] do not divide the target size 1638400"),
        (PAPER, "benchmarks: [flan, news]", "configuration: key 'cost' has no entry for benchmark(s) ['news']"),
        (QUICK, "target: 128", "configuration: key 'target' (128) must be the largest of 'sizes' [8, 16, 32, 64, 128, 256]"),
        (QUICK, "sizes: [8, 16, 32, 128, 256]", "configuration: key 'ratios': budgets target/[4] are not among 'sizes' [8, 16, 32, 128, 256]"),
        (QUICK, "data: {test_size: 64, max_train: 128, seed: 0}", "configuration: key 'sizes': size 256 is larger than the training split (data.max_train = 128)"),
        (QUICK, "zoo: null\nmodels: null", "configuration: no candidate models: give a 'zoo' sheet, a 'models' sheet, or both"),
    ],
)
def test_a_grid_the_schema_cannot_judge_stops_at_start_naming_the_key(tmp_path, base, overrides, expected):
    (tmp_path / "override.yaml").write_text(overrides + "\n")
    output = _dry_run_error(tmp_path, "--configfile", base, str(tmp_path / "override.yaml"))
    assert expected in output


def test_a_model_in_both_sheets_is_named_with_both_sheets(tmp_path):
    models = _sheet(tmp_path / "models.tsv", ["name", "path", "family"], ["gpt2-xs", "gpt2", "gpt2"])
    output = _dry_run_error(tmp_path, "--configfile", QUICK, "--config", f"models={models}")
    assert f"model 'gpt2-xs' is both in the zoo sheet (config/zoo-quick.tsv) and in the models sheet ({models})" in output


def test_a_missing_sheet_or_model_directory_is_named(tmp_path):
    output = _dry_run_error(tmp_path, "--configfile", QUICK, "--config", f"models={tmp_path / 'absent.tsv'}")
    assert f"configuration: key 'models': no sheet at {tmp_path / 'absent.tsv'}" in output
    models = _sheet(tmp_path / "models.tsv", ["name", "path", "family"], ["mine", "./no/such/dir", "gpt2"])
    output = _dry_run_error(tmp_path, "--configfile", QUICK, "--config", f"models={models}")
    assert "configuration: model 'mine': no model directory at ./no/such/dir" in output


@pytest.mark.parametrize(
    "key, rows, expected",
    [
        ("models", [["name", "path", "family"], ["good", "gpt2", "gpt2"], ["org/name", "gpt2", "gpt2"]],
         ["row 1", "'org/name' does not match"]),
        ("models", [["name", "path"], ["x", "gpt2"]], ["row 0", "'family' is a required property"]),
        ("models", [["name", "path", "family", "colour"], ["x", "gpt2", "gpt2", "red"]], ["row 0", "'colour' was unexpected"]),
        ("zoo", None, ["row 1", "'mamba' is not one of ['gpt2', 'llama', 't5']"]),
    ],
)
def test_a_malformed_sheet_is_refused_naming_the_row_and_the_value(tmp_path, key, rows, expected):
    """Sheets are validated against their schema at start; the message names the row (counted
    from 0 below the header) and the offending value or column."""
    if rows is None:  # the quick zoo with one architecture misspelt
        lines = (REPO / "config" / "zoo-quick.tsv").read_text().splitlines()
        rows = [line.split("\t") for line in lines]
        rows[2][1] = "mamba"
    sheet = _sheet(tmp_path / f"{key}.tsv", *rows)
    output = _dry_run_error(tmp_path, "--configfile", QUICK, "--config", f"{key}={sheet}")
    assert f"key '{key}': sheet {sheet}" in output
    for part in expected:
        assert part in output
