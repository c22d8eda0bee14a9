"""Adaptive's prior is fed leave one benchmark out: the DAG gives each benchmark's selection the
other benchmarks' loss tables, never its own; on the grid the prior is refused at start."""

import re

import yaml

from tests.helpers import QUICK, REPO, run_snakemake

PRIOR = {"selection": {**yaml.safe_load((REPO / "config" / "paper.yaml").read_text())["selection"], "adaptive_prior": True}}


def jobs_of(dry_run: str, rule: str) -> list[tuple[str, str]]:
    """(wildcards, inputs) of every job of `rule` in a dry run's listing."""
    out = []
    for block in re.split(rf"(?:rule|checkpoint) {rule}:\n", dry_run)[1:]:
        inputs = re.search(r"^\s+input: (.*)$", block, re.MULTILINE).group(1)
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.MULTILINE).group(1)
        out.append((wildcards, inputs))
    return out


def test_the_prior_of_each_benchmark_reads_only_the_other_benchmarks(tmp_path, published_dir):
    config = tmp_path / "prior.yaml"
    config.write_text(yaml.safe_dump(PRIOR))
    paper = run_snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "paper.yaml"), str(config),
                          "--config", f"curves_dir={published_dir}", 'benchmarks=["flan","gigaword"]').stdout
    checked = 0
    for listing, rules, names in ((paper, ["select_models"], ["flan", "gigaword"]),):
        for rule in rules:
            for wildcards, inputs in jobs_of(listing, rule):
                own = re.search(r"benchmark=(\w+)", wildcards).group(1)
                library = set(re.findall(r"losses/(\w+)\.tsv", inputs))
                if rule == "select_models":
                    library.discard(own)  # its own table is the one it evaluates, read for `losses`
                    assert inputs.count(f"losses/{own}.tsv") == 1
                assert library == set(names) - {own}
                checked += 1
    assert checked == 2
    # on the grid the prior is refused at start, naming the key
    grid = run_snakemake(tmp_path, "-n", "--configfile", QUICK, str(config), "--config", "methods=[AtS,Adaptive]",
                         check=False)
    assert grid.returncode != 0
    assert "key 'selection.adaptive_prior': the prior runs on published curves only" in grid.stdout + grid.stderr
