"""`--sdm conda`: the environment Snakemake builds for the rules installs lensllm from this checkout.

No conda exists on this machine or in CI, so a stand-in `conda` on PATH answers Snakemake's checks
and records the environment file and the LENSLLM_ROOT that `conda env create` is started with.
pip then resolves that file's pip section, as conda hands it over (a requirements file beside the
environment file, read from there), offline: every other requirement is already installed here,
and lensllm must come, editable, from the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from tests.helpers import REPO, run_snakemake

FAKE_CONDA = """#!{python}
import json, os, sys
args = sys.argv[1:]
if args[:1] == ["info"]:
    print(json.dumps({{"conda_prefix": os.environ["FAKE_CONDA_PREFIX"], "platform": "linux-64"}}))
elif args[:1] == ["--version"]:
    print("conda 24.9.2")
elif args[:2] == ["config", "--get"]:
    print(json.dumps({{"get": {{"channel_priority": "strict"}}}}))
elif args[:1] == ["clean"]:
    pass
elif args[:2] == ["env", "create"]:
    prefix = args[args.index("--prefix") + 1].strip('"')
    os.makedirs(os.path.join(prefix, "bin"), exist_ok=True)
    with open(os.environ["FAKE_CONDA_RECORD"], "a") as out:
        out.write(json.dumps({{"file": args[args.index("--file") + 1].strip('"'),
                              "LENSLLM_ROOT": os.environ.get("LENSLLM_ROOT")}}) + "\\n")
else:
    sys.exit(f"fake conda: unexpected arguments {{args}}")
"""


def test_the_conda_environment_installs_lensllm_from_the_checkout(tmp_path, published_dir, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    conda = bin_dir / "conda"
    conda.write_text(FAKE_CONDA.format(python=sys.executable))
    conda.chmod(0o755)
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CONDA_PREFIX", str(tmp_path / "base"))
    monkeypatch.setenv("FAKE_CONDA_RECORD", str(record))
    monkeypatch.delenv("LENSLLM_ROOT", raising=False)
    workdir = tmp_path / "run"
    workdir.mkdir()
    run_snakemake(workdir, "--sdm", "conda", "--conda-create-envs-only", "--conda-prefix", str(tmp_path / "envs"), "--cores", "1",
                  "--configfile", str(REPO / "config" / "paper.yaml"), "--config", f"curves_dir={published_dir}",
                  'benchmarks=["flan","gigaword"]')
    [created] = [json.loads(line) for line in record.read_text().splitlines()]
    assert created["LENSLLM_ROOT"] == str(REPO)

    # What conda does with the pip section: a requirements file beside the environment file.
    env_file = created["file"]
    [pip] = [entry["pip"] for entry in yaml.safe_load(open(env_file))["dependencies"] if isinstance(entry, dict)]
    requirements = os.path.join(os.path.dirname(env_file), "condaenv.requirements.txt")
    with open(requirements, "w") as out:
        out.write("\n".join(pip) + "\n")
    report = tmp_path / "pip-report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index", "--no-build-isolation",
         "--report", str(report), "-r", requirements],
        capture_output=True, text=True, cwd=os.path.dirname(env_file), env={**os.environ, "LENSLLM_ROOT": created["LENSLLM_ROOT"]},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    [lensllm] = [item for item in json.loads(report.read_text())["install"] if item["metadata"]["name"] == "lensllm"]
    assert lensllm["download_info"]["url"] == REPO.as_uri()
    assert lensllm["download_info"]["dir_info"] == {"editable": True}
