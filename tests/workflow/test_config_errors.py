"""A configuration error stops a run at start, through the real command line (a dry run), with a
message that names the key at fault. Every check and its message is unit-tested without Snakemake
in tests/unit/test_pipeline.py; this shows that the workflow runs them and passes the message on."""

from __future__ import annotations

from tests.helpers import QUICK, run_snakemake


def test_a_grid_the_schema_cannot_judge_stops_at_start_naming_the_key(tmp_path):
    (tmp_path / "override.yaml").write_text("sizes: [8, 16, 32, 128, 256]\n")
    result = run_snakemake(tmp_path, "-n", "--configfile", QUICK, str(tmp_path / "override.yaml"), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "configuration: key 'ratios': budgets target/[4] are not among 'sizes' [8, 16, 32, 128, 256]" in output
    assert "rule " not in output  # nothing was planned
