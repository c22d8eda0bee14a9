"""A fine-tuning job killed for lack of memory is retried with more memory (`--retries`, as the
profiles set it): the real finetune_model rule, its real resources, a real kill (SIGKILL, exit 137)."""

from __future__ import annotations

import json
import re
import subprocess

from tests.helpers import QUICK, snakemake_command, write_python_killed_once

TARGET = "results/quick/finetune/debsum/llama-xs/0.json"


def job_resources(output: str, rule: str) -> list[dict[str, str]]:
    """The resources Snakemake printed for each start of a job of `rule`, in order."""
    blocks = re.findall(rf"rule {rule}:\n(.*?)\n\n", output + "\n\n", flags=re.S)
    found = []
    for block in blocks:
        line = re.search(r"^\s*resources: (.*)$", block, flags=re.M)
        found.append(dict(item.split("=", 1) for item in line.group(1).split(", ")))
    return found


def test_finetune_killed_for_memory_is_retried_with_more_memory(tmp_path, sources_dir, quick_local_results):
    # The quick run's benchmarks and zoo; the fine-tuning job of llama-xs on debsum is redone.
    results = tmp_path / "results" / "quick"
    results.mkdir(parents=True)
    for name in ("data", "zoo"):
        subprocess.run(["cp", "-a", str(quick_local_results / "results" / "quick" / name), str(results)], check=True)
    record = tmp_path / "finetune-calls.txt"
    write_python_killed_once(tmp_path / "bin", "*'--model-name llama-xs '*'/debsum.jsonl '*", record)
    command, env = snakemake_command(
        tmp_path, TARGET, "--cores", "2", "--retries", "1", "--configfile", QUICK, "--config", f"sources_dir={sources_dir}"
    )
    env["PATH"] = f"{tmp_path / 'bin'}:{env['PATH']}"
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]

    # Attempt 1 was killed like an out-of-memory job, attempt 2 ran with twice the memory and time.
    assert "returned non-zero exit status 137" in output
    assert len(record.read_text().splitlines()) == 2
    first, second = job_resources(output, "finetune_model")
    assert int(first["mem_mb"]) >= 1000
    assert int(second["mem_mb"]) in (2 * int(first["mem_mb"]), 2 * int(first["mem_mb"]) + 1)
    assert int(second["runtime"]) >= 2 * int(first["runtime"])

    # The retry finished the job: the same losses as the quick run's job (same seeds).
    for size in (0, 8, 256):
        redone = json.loads((results / "finetune" / "debsum" / "llama-xs" / f"{size}.json").read_text())
        local = json.loads((quick_local_results / "results" / "quick" / "finetune" / "debsum" / "llama-xs" / f"{size}.json").read_text())
        assert redone["test_loss"] == local["test_loss"]
