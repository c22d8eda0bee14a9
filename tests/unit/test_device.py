"""Device and precision resolution, GPU slots for concurrent jobs, energy meters and the resource
estimates: every GPU-side decision, tested on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lensllm.training import device as dev
from lensllm.training.resources import (
    check_fits_gpu,
    estimate_finetune,
    gpu_bytes,
    hub_estimates,
    main as resources_main,
    params_from_path,
    shape_of,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)


def test_auto_is_the_cpu_without_accelerators(no_accelerator):
    assert dev.resolve_device("auto") == "cpu" and dev.resolve_device("cpu") == "cpu"


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.resolve_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    assert dev.resolve_device("auto") == "mps"


@pytest.mark.parametrize("name", ["gpu", "cuda:", "CUDA", "tpu", ""])
def test_unknown_device_names_the_key(name):
    with pytest.raises(ValueError, match=r"^ntk\.device: unknown device"):
        dev.resolve_device(name, "ntk.device")


def test_cuda_without_a_gpu_is_a_clear_error(no_accelerator):
    with pytest.raises(ValueError, match=r"finetune\.device: 'cuda' asked but torch sees no CUDA device"):
        dev.resolve_device("cuda")
    with pytest.raises(ValueError, match=r"finetune\.device: 'mps' asked"):
        dev.resolve_device("mps")


def test_a_cuda_index_beyond_the_gpus_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert dev.resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueError, match=r"'cuda:2' asked but torch sees 2 CUDA device"):
        dev.resolve_device("cuda:2")


def test_precisions_on_the_cpu():
    assert dev.resolve_precision("fp32", "cpu") == dev.Precision("fp32")
    bf16 = dev.resolve_precision("bf16", "cpu")
    assert bf16.autocast_dtype == torch.bfloat16 and not bf16.grad_scaler and bf16.scaler("cpu") is None
    layer = torch.nn.Linear(4, 4)
    with bf16.autocast("cpu"):
        assert layer(torch.ones(2, 4)).dtype == torch.bfloat16
    assert layer.weight.dtype == torch.float32  # master weights stay fp32
    with pytest.raises(ValueError, match=r"finetune\.precision: 'fp16' .* needs a CUDA device"):
        dev.resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match=r"finetune\.precision: unknown precision 'fp8'"):
        dev.resolve_precision("fp8", "cpu")


# --- GPU slots ------------------------------------------------------------------------------------

def test_slots_are_claimed_in_turn_and_released(tmp_path):
    env_a, env_b, env_c = {}, {}, {}
    a = dev.claim_gpu_slot(2, tmp_path, environ=env_a)
    b = dev.claim_gpu_slot(2, tmp_path, environ=env_b)
    assert (a.index, env_a["CUDA_VISIBLE_DEVICES"], b.index, env_b["CUDA_VISIBLE_DEVICES"]) == (0, "0", 1, "1")
    with pytest.raises(TimeoutError, match=r"finetune\.gpu_slots: all 2 GPU slots"):
        dev.claim_gpu_slot(2, tmp_path, timeout=0.3, poll=0.05, environ=env_c)
    a.release()
    assert dev.claim_gpu_slot(2, tmp_path, environ=env_c).index == 0
    b.release()


def test_slots_map_onto_the_visible_gpus_given_to_the_run(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": "4,6"}
    first = dev.claim_gpu_slot(2, tmp_path, environ=env)
    assert env["CUDA_VISIBLE_DEVICES"] == "4"
    env = {"CUDA_VISIBLE_DEVICES": "4,6"}
    dev.claim_gpu_slot(2, tmp_path, environ=env)
    assert env["CUDA_VISIBLE_DEVICES"] == "6"
    first.release()
    with pytest.raises(ValueError, match=r"3 slots but CUDA_VISIBLE_DEVICES=4,6"):
        dev.claim_gpu_slot(3, tmp_path, environ={"CUDA_VISIBLE_DEVICES": "4,6"})


def test_concurrent_jobs_get_distinct_gpus(tmp_path):
    """Four processes, three slots: at most three run at once, each on its own GPU id."""
    log = tmp_path / "log"
    job = ("import os, sys, time; t = time.time(); time.sleep(0.6); "
           "open(sys.argv[1], 'a').write(f\"{os.environ['CUDA_VISIBLE_DEVICES']} {t} {time.time()}\\n\")")
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    procs = [subprocess.Popen([sys.executable, "-m", "lensllm.training.device", "slot", "--gpus", "3", "--lock-dir",
                               str(tmp_path / "locks"), "--", sys.executable, "-c", job, str(log)], env=env,
                              stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _ in outcomes), outcomes
    runs = [(gpu, float(a), float(b)) for gpu, a, b in (line.split() for line in log.read_text().splitlines())]
    assert len(runs) == 4 and {gpu for gpu, _, _ in runs} <= {"0", "1", "2"}
    for i, (gpu, start, end) in enumerate(runs):
        overlapping = [g for j, (g, s, e) in enumerate(runs) if j != i and s < end and start < e]
        assert gpu not in overlapping, f"two jobs on GPU {gpu} at once: {runs}"
        running = [g for g, s, e in runs if s <= start < e]  # at the moment this job started
        assert len(running) <= 3, f"more jobs at once than slots: {runs}"


# --- energy ----------------------------------------------------------------------------------------

def _zone(root: Path, name: str, energy: int, wrap: int) -> Path:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "energy_uj").write_text(f"{energy}\n")
    (zone / "max_energy_range_uj").write_text(f"{wrap}\n")
    return zone


def test_rapl_counters_give_joules_with_wrap_around(tmp_path):
    package0 = _zone(tmp_path, "intel-rapl:0", 5_000_000, 10_000_000)
    package1 = _zone(tmp_path, "intel-rapl:1", 9_000_000, 10_000_000)
    _zone(tmp_path, "intel-rapl:0:0", 1, 10)  # a sub-zone (the cores): part of package 0, not added
    meter = dev.EnergyMeter("cpu", powercap=tmp_path).start()
    assert [z.name for z in meter.zones] == ["intel-rapl:0", "intel-rapl:1"]
    (package0 / "energy_uj").write_text("7000000\n")  # +2 J
    (package1 / "energy_uj").write_text("1000000\n")  # wrapped: +2 J
    reading = meter.stop()
    assert reading.cpu_joules == pytest.approx(4.0) and reading.gpu_joules is None
    assert reading.joules == pytest.approx(4.0) and reading.source == "rapl"


def test_no_readable_counter_gives_no_energy(tmp_path):
    zone = _zone(tmp_path, "intel-rapl:0", 5, 10)
    (zone / "energy_uj").write_text("permission denied\n")
    reading = dev.EnergyMeter("cpu", powercap=tmp_path).start().stop()
    assert reading.joules is None and reading.source == ""
    assert dev.EnergyMeter("cpu", powercap=tmp_path / "absent").start().stop().joules is None


# --- resource estimates ----------------------------------------------------------------------------

def test_cpu_estimate_keeps_the_documented_formula():
    est = estimate_finetune(1e8, 1e6, 1e5, device="cpu", threads=2, data_tokens=1e5)
    assert est.host_mem_mb == int(1500 + 24 * 1e8 / 1e6 + 1e5 * 40 / 1e6) and est.gpu_mem_mb == 0
    assert est.minutes == int(10 + 2 * (6 * 1e8 * 1e6 + 2 * 1e8 * 1e5) / 2e10 / 60)
    # 'auto' without a booked GPU runs on the host as well; a GPU job needs less host memory.
    assert estimate_finetune(1e8, 1e6, 1e5, device="auto") == estimate_finetune(1e8, 1e6, 1e5, device="cpu")
    on_gpu = estimate_finetune(1e8, 1e6, 1e5, device="cuda", gpus=1, precision="bf16")
    assert on_gpu.gpu_mem_mb > 0 and on_gpu.host_mem_mb < est.host_mem_mb and on_gpu.minutes < est.minutes
    measured = estimate_finetune(1e8, 1e6, 1e5, device="cuda", gpus=1, flops_per_second=1e15)
    assert measured.minutes == 10 and estimate_finetune(1e8, 1e6, 1e5, attempt=2).host_mem_mb > est.host_mem_mb


def test_gpu_memory_grows_with_micro_batch_and_shrinks_with_lora_and_bf16():
    layers, width = shape_of(124e6)
    assert 8 <= layers <= 16 and 500 <= width <= 1000  # GPT-2 small: 12 x 768
    full = gpu_bytes(7e9, method="full", micro_batch=1, seq_len=640)
    assert full > 16 * 7e9 and gpu_bytes(7e9, method="lora", micro_batch=1, seq_len=640) < full / 3
    assert gpu_bytes(7e9, micro_batch=8) > gpu_bytes(7e9, micro_batch=1) > gpu_bytes(7e9, precision="bf16")


def test_a_model_too_large_for_the_gpu_fails_early_naming_lora():
    with pytest.raises(ValueError, match=r"finetune\.method: 'full'.*use finetune\.method: lora"):
        check_fits_gpu(6.7e9, 80 * 2**30, method="full", precision="bf16", seq_len=640, device_name="A100")
    check_fits_gpu(6.7e9, 80 * 2**30, method="lora", precision="bf16", seq_len=640)
    check_fits_gpu(124e6, 80 * 2**30, method="full", precision="fp32", seq_len=640)


def test_parameters_from_names_and_directories(tmp_path):
    assert params_from_path("opt-1.3b", "facebook/opt-1.3b") == 1.3e9
    assert params_from_path("gpt2", "gpt2") == 124e6 and params_from_path("x", "org/x") == 1e9
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 2000)
    assert params_from_path("local", str(tmp_path)) == 1000


def test_dry_run_helper_prints_every_hub_model(capsys):
    assert resources_main(["--configfile", str(REPO / "config/hub.yaml"), "--repository", str(REPO)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[2:]}
    assert lines[1].startswith("model\tparams\thost_GB\tGPU_GB") and len(rows) == 30
    import yaml

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config.update(yaml.safe_load((REPO / "config/hub.yaml").read_text()))
    estimates = {row["model"]: row for row in hub_estimates(config, REPO)}
    assert estimates["opt-6.7b"]["gpu_gb_micro1"] > 80 > estimates["gpt2"]["gpu_gb_micro1"]


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh)")


@pytest.mark.gpu
@needs_cuda
def test_on_a_gpu_auto_is_cuda_and_bf16_is_known():
    assert dev.resolve_device("auto") == "cuda" and dev.gpu_name("cuda")
    assert dev.gpu_memory_bytes("cuda") > 2**30
    assert dev.resolve_precision("fp16", "cuda").grad_scaler


@pytest.mark.gpu
@needs_cuda
def test_a_claimed_slot_is_the_only_gpu_torch_sees(tmp_path):
    probe = "import os, torch; print(torch.cuda.device_count(), os.environ['CUDA_VISIBLE_DEVICES'])"
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    out = subprocess.run([sys.executable, "-m", "lensllm.training.device", "slot", "--gpus", "1", "--lock-dir", str(tmp_path),
                          "--", sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "0"]


# --- energy in the cost tables -------------------------------------------------------------------

def test_flops_table_carries_the_energy_of_each_finetune(tmp_path):
    import pandas as pd

    from lensllm.curves.cost import read_energy, read_flops, write_flops
    from lensllm.curves.collect import energy_of
    from lensllm.curves.cost import selection_energy

    runs = pd.DataFrame({"model": ["a", "a", "b", "b"], "size": [0, 8, 0, 8], "energy_joules": [3.0, 12.5, None, None]})
    energy = energy_of(runs)
    assert energy == {("a", 0): 0.0, ("a", 8): 12.5, ("b", 0): None, ("b", 8): None}
    flops = {("a", 0): 0.0, ("a", 8): 1e9, ("b", 0): 0.0, ("b", 8): 2e9}
    write_flops(flops, tmp_path / "f.tsv", energy)
    assert read_flops(tmp_path / "f.tsv") == flops and read_energy(tmp_path / "f.tsv") == energy
    assert selection_energy([("a", 0), ("a", 8), ("a", 8)], energy) == 12.5
    assert selection_energy([("a", 8), ("b", 8)], energy) is None  # a partial sum would pass for the whole
    write_flops(flops, tmp_path / "published.tsv")  # paper mode: no energy column, none read
    assert read_energy(tmp_path / "published.tsv") == {}


def test_ntk_and_spectra_name_a_device_they_cannot_use(tmp_path, no_accelerator, capsys):
    from lensllm.data.benchmark import Benchmark, Example
    from lensllm.probes.ntk import compute_ntk
    from lensllm.probes.spectra import main as spectra_main

    bench = Benchmark("toy", "lm", (Example("", "a b"),) * 4, (Example("", "a b"),))
    with pytest.raises(ValueError, match=r"ntk\.device: 'cuda' asked but torch sees no CUDA device"):
        compute_ntk("unused-model", bench, eta=1e-3, device="cuda")
    with pytest.raises(ValueError, match=r"finetune\.precision: 'fp16'"):
        compute_ntk("unused-model", bench, eta=1e-3, device="cpu", precision="fp16")
    with pytest.raises(SystemExit) as stopped:
        spectra_main(["--model", "unused-model", "--out", str(tmp_path / "w.json"), "--device", "tpu"])
    assert stopped.value.code == 2
    assert "ntk.device: unknown device 'tpu'" in capsys.readouterr().err
