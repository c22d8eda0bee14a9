"""Select mode with a FLOPs budget (select.flops_budget): the checkpoint plan_selection chooses the sizes.
(The overrides turn off config/select.yaml's rounds, select.max_rounds: a FLOPs budget that chooses
the budget runs without rounds.)

A dry-run stops at the checkpoint: no fine-tune is in the DAG before the plan says which sizes the
budget buys. A tiny real run (the quick zoo and data reused, 45 fine-tunes) takes about 6 minutes on
2 cores, too long for CI; it was checked by hand on a copy of a finished quick run.
"""

from __future__ import annotations

import pytest

from tests.helpers import QUICK, REPO, run_snakemake

SELECT = str(REPO / "config" / "select.yaml")


def _dry_run(workdir, sources_dir, overrides, check=True):
    (workdir / "flops.yaml").write_text(overrides)
    return run_snakemake(workdir, "-n", "-p", "--configfile", SELECT, QUICK, str(workdir / "flops.yaml"),
                         "--config", f"sources_dir={sources_dir}", check=check)


def test_a_flops_budget_plans_the_sizes_in_a_checkpoint_before_any_fine_tune(tmp_path, sources_dir):
    result = _dry_run(tmp_path, sources_dir, "sizes: [8, 16, 32, 64, 128]\n"
                      "select: {full_size: 256, budget: null, flops_budget: 2e10, max_rounds: 0}\n")
    output = result.stdout + result.stderr
    jobs = {line.split()[0]: int(line.split()[1]) for line in output.split("Job stats:")[1].splitlines()[3:]
            if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert jobs["plan_selection"] == 1  # one per benchmark (debsum, of config/select.yaml)
    assert "finetune_model" not in jobs and jobs["collect_losses"] == 1
    assert "checkpoint plan_selection:" in output and "--flops-budget 20000000000.0 --sizes 8 16 32 64 128" in output
    assert "checkpoint jobs, which will result in alteration of the DAG" in output


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ("select: {flops_budget: 2e10, max_rounds: 0}\n",
         "give exactly one of 'select.budget' (the largest training subset per candidate) and "
         "'select.flops_budget'"),
        ("select: {budget: null, flops_budget: null, max_rounds: 0}\n", "neither is given"),
        ("select: {full_size: 256, budget: null, flops_budget: 2e10, max_rounds: 0}\n",
         "key 'select.full_size' (256) must be larger than every size of 'sizes' [8, 16, 32, 64, 128, 256]"),
    ],
)
def test_the_two_budget_keys_are_checked_at_start(tmp_path, sources_dir, overrides, expected):
    result = _dry_run(tmp_path, sources_dir, overrides, check=False)
    assert result.returncode != 0 and expected in result.stdout + result.stderr
