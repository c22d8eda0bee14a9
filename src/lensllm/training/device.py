"""Where a job computes: device and precision, one GPU per job on a workstation, and its energy.

Device (`finetune.device`, `ntk.device`): ``auto`` is ``cuda`` when torch sees a CUDA device, else
``mps`` when Apple's Metal backend is available, else ``cpu``; or a name: ``cpu``, ``cuda``,
``cuda:N``, ``mps``. A device that is asked for but absent stops the job before any work, with a
message naming the key.

Precision (`finetune.precision`): the weights are always loaded and updated in float32 (the
"master weights"); ``fp32`` computes in float32, ``bf16`` runs forward passes under
`torch.autocast` with bfloat16 (CPU and GPU), ``fp16`` under autocast with float16 and a
`torch.amp.GradScaler` (CUDA only: the CPU has no fast float16 path and fp16 needs the scaler's
loss scaling, which only CUDA autocast is meant for). The loss is always reduced in float32.

GPU slots (a multi-GPU workstation): `claim_gpu_slot` takes the first free lock file
``gpu<i>.lock`` of a directory (an exclusive `fcntl.flock`, released by the kernel when the
process ends, however it ends) and sets ``CUDA_VISIBLE_DEVICES`` to that GPU before torch starts
CUDA, so that Snakemake's ``--resources gpu=8`` (at most 8 jobs at once) becomes one distinct GPU
per job. On SLURM the scheduler sets ``CUDA_VISIBLE_DEVICES`` itself and no slot is claimed.

Energy: `EnergyMeter` reads cumulative counters at the start and the end of a job: NVML's total
energy of the job's GPU (millijoules, Volta and later) and the CPU packages' RAPL counters under
``/sys/class/powercap`` (microjoules, wrapping at ``max_energy_range_uj``). A counter that cannot be
read gives nothing: the energy is then None, never estimated. RAPL counts the whole package, other
processes included, so it is the job's energy only when the job runs alone on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lensllm.training.cli import exit_on_error

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
PRECISIONS = ("fp32", "bf16", "fp16")
POWERCAP = Path("/sys/class/powercap")


def resolve_device(name: str = "auto", key: str = "finetune.device") -> str:
    """The torch device string for `name` (see the module docstring); ValueError naming `key`
    for an unknown name or a device torch does not see."""
    import torch

    if not isinstance(name, str) or not DEVICE_PATTERN.match(name):
        raise ValueError(f"{key}: unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available() else "cpu"
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            raise ValueError(f"{key}: {name!r} asked but torch sees no CUDA device (torch {torch.__version__}, "
                             f"CUDA build {torch.version.cuda or 'none'}, CUDA_VISIBLE_DEVICES="
                             f"{visible if visible is not None else 'unset'})")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= count:
            raise ValueError(f"{key}: {name!r} asked but torch sees {count} CUDA device(s) (cuda:0 ... cuda:{count - 1})")
    if name == "mps" and not _mps_available():
        raise ValueError(f"{key}: 'mps' asked but torch's Metal backend is not available on this machine")
    return name


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


@dataclass(frozen=True)
class Precision:
    """How a job computes: `name`, the autocast dtype (None: float32 throughout) and whether the
    loss is scaled by a `GradScaler` (fp16)."""

    name: str
    autocast_dtype: Any = None
    grad_scaler: bool = False

    def autocast(self, device: str) -> contextlib.AbstractContextManager:
        """`torch.autocast` on `device` with this precision's dtype, or a no-op for fp32."""
        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device_type(device), dtype=self.autocast_dtype)

    def scaler(self, device: str):
        """A `torch.amp.GradScaler` for fp16, else None."""
        import torch

        return torch.amp.GradScaler(device_type(device)) if self.grad_scaler else None


def resolve_precision(name: str, device: str, key: str = "finetune.precision") -> Precision:
    """The `Precision` named `name` on the resolved `device`; ValueError naming `key` when it is
    unknown or the device cannot run it (fp16 off CUDA, bf16 on a GPU without bfloat16)."""
    import torch

    if name not in PRECISIONS:
        raise ValueError(f"{key}: unknown precision {name!r}; use one of {', '.join(PRECISIONS)}")
    kind = device_type(device)
    if name == "fp32":
        return Precision("fp32")
    if name == "fp16":
        if kind != "cuda":
            raise ValueError(f"{key}: 'fp16' (autocast with a grad scaler) needs a CUDA device, the job runs on "
                             f"{device!r}; use bf16 or fp32 there")
        return Precision("fp16", torch.float16, grad_scaler=True)
    if kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"{key}: 'bf16' asked but {gpu_name(device)} has no bfloat16 support; use fp16 or fp32")
    return Precision("bf16", torch.bfloat16)


def device_type(device: str) -> str:
    """'cuda', 'mps' or 'cpu' of a device string such as 'cuda:1'."""
    return device.split(":")[0]


def gpu_name(device: str) -> str | None:
    """The GPU's name (`torch.cuda.get_device_name`), or None off CUDA."""
    import torch

    return torch.cuda.get_device_name(torch.device(device)) if device_type(device) == "cuda" else None


def gpu_memory_bytes(device: str) -> int | None:
    """Total memory of the CUDA device, or None off CUDA."""
    import torch

    if device_type(device) != "cuda":
        return None
    return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)


def is_out_of_memory(err: BaseException) -> bool:
    """Whether `err` is torch's out-of-memory error of an accelerator."""
    import torch

    return isinstance(err, getattr(torch, "OutOfMemoryError", ())) or "out of memory" in str(err).lower()


# --- one GPU per job on a workstation ---------------------------------------------------------


@dataclass(frozen=True)
class GpuSlot:
    """A claimed GPU: slot `index`, the `gpu` id set in CUDA_VISIBLE_DEVICES, and the open lock file
    (the claim lasts as long as this file is open, i.e. until `release` or the end of the process)."""

    index: int
    gpu: str
    lock: IO[str] = field(repr=False, compare=False)

    def release(self) -> None:
        """Give the slot back (closing the lock file releases the lock)."""
        self.lock.close()


def claim_gpu_slot(slots: int, lock_dir: str | os.PathLike, *, timeout: float = 3600.0,
                   poll: float = 0.2, environ: dict[str, str] | None = None) -> GpuSlot:
    """Claim the first free of `slots` GPU slots in `lock_dir` and set CUDA_VISIBLE_DEVICES.

    Slot i is GPU i, or the i-th entry of a CUDA_VISIBLE_DEVICES already set (a subset of the
    machine's GPUs given to the whole run). Waits up to `timeout` seconds for a slot (Snakemake's
    `gpu` resource normally keeps jobs from waiting at all), then raises TimeoutError. Call it before
    torch initialises CUDA: afterwards a changed CUDA_VISIBLE_DEVICES has no effect.
    """
    env = os.environ if environ is None else environ
    if slots < 1:
        raise ValueError(f"finetune.gpu_slots: at least 1 slot is needed to claim one, got {slots}")
    given = [g for g in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    if given and len(given) < slots:
        raise ValueError(f"finetune.gpu_slots: {slots} slots but CUDA_VISIBLE_DEVICES={','.join(given)} "
                         f"names {len(given)} GPU(s)")
    gpus = given[:slots] if given else [str(i) for i in range(slots)]
    directory = Path(lock_dir)
    directory.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        for index, gpu in enumerate(gpus):
            handle = open(directory / f"gpu{index}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            env["CUDA_VISIBLE_DEVICES"] = gpu
            return GpuSlot(index, gpu, handle)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"finetune.gpu_slots: all {slots} GPU slots in {directory} stayed taken for "
                               f"{timeout:.0f} s (more GPU jobs at once than slots: give --resources gpu={slots})")
        time.sleep(poll)


def add_gpu_slot_options(parser: argparse.ArgumentParser) -> None:
    """The options of a job's command line that claim its GPU slot: --gpu-slots and --gpu-lock-dir."""
    parser.add_argument("--gpu-slots", type=int, default=0,
                        help="GPUs of this workstation: claim a free one (CUDA_VISIBLE_DEVICES) before starting; "
                             "0 (default) leaves the placement to the scheduler")
    parser.add_argument("--gpu-lock-dir", default=".gpu_slots", help="directory of the GPU slot locks of the run")


def claim_gpu_slot_option(parser: argparse.ArgumentParser, args: argparse.Namespace) -> GpuSlot | None:
    """The slot of --gpu-slots and --gpu-lock-dir (`claim_gpu_slot`; None for 0 slots), or the command
    line's usage error when none can be claimed. Call it before torch starts CUDA, and keep the slot
    while the job runs: once it is dropped, its lock file is closed and the slot is free again."""
    if not args.gpu_slots:
        return None
    try:
        return claim_gpu_slot(args.gpu_slots, args.gpu_lock_dir)
    except (ValueError, TimeoutError) as err:
        parser.error(str(err))


# --- energy --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnergyReading:
    """Joules a job used by source (`gpu` from NVML, `cpu` from RAPL; None where not readable)."""

    gpu_joules: float | None
    cpu_joules: float | None

    @property
    def joules(self) -> float | None:
        """The sum of the readable sources, None when none was readable."""
        parts = [j for j in (self.gpu_joules, self.cpu_joules) if j is not None]
        return sum(parts) if parts else None

    @property
    def source(self) -> str:
        """'nvml', 'rapl', 'nvml+rapl' or '' (nothing readable)."""
        return "+".join(n for n, j in (("nvml", self.gpu_joules), ("rapl", self.cpu_joules)) if j is not None)


def rapl_zones(root: Path = POWERCAP) -> list[Path]:
    """The top-level RAPL zones (one per CPU package: ``intel-rapl:0``; sub-zones such as
    ``intel-rapl:0:0`` are parts of them and left out) whose counter can be read."""
    zones = []
    for zone in sorted(root.glob("*rapl:*")) if root.is_dir() else []:
        if re.fullmatch(r"[a-z-]*rapl:\d+", zone.name):
            try:
                int((zone / "energy_uj").read_text())
            except (OSError, ValueError):
                continue
            zones.append(zone)
    return zones


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


class EnergyMeter:
    """Cumulative energy counters read at `start()` and `stop()` (see the module docstring)."""

    def __init__(self, device: str = "cpu", powercap: Path = POWERCAP) -> None:
        self.device = device
        self.zones = rapl_zones(powercap)
        self._nvml = _nvml_handle(device)
        self._start: tuple[int | None, list[int | None]] | None = None

    def _read(self) -> tuple[int | None, list[int | None]]:
        gpu = None
        if self._nvml is not None:
            import pynvml

            try:
                gpu = int(pynvml.nvmlDeviceGetTotalEnergyConsumption(self._nvml))
            except pynvml.NVMLError:
                gpu = None
        return gpu, [_read_int(zone / "energy_uj") for zone in self.zones]

    def start(self) -> EnergyMeter:
        """Read the counters now."""
        self._start = self._read()
        return self

    def stop(self) -> EnergyReading:
        """The joules since `start()`: counter differences, RAPL wrap-arounds corrected."""
        if self._start is None:
            raise RuntimeError("EnergyMeter.stop() before start()")
        (gpu0, cpu0), (gpu1, cpu1) = self._start, self._read()
        gpu = (gpu1 - gpu0) / 1e3 if gpu0 is not None and gpu1 is not None else None
        cpu = None
        if self.zones and all(v is not None for v in (*cpu0, *cpu1)):
            cpu = 0.0
            for zone, a, b in zip(self.zones, cpu0, cpu1):
                delta = b - a
                if delta < 0:
                    delta += _read_int(zone / "max_energy_range_uj") or 0
                cpu += delta / 1e6
        return EnergyReading(gpu, cpu)


def _nvml_handle(device: str):
    """NVML's handle of the CUDA `device` (found by its UUID, so CUDA_VISIBLE_DEVICES is honoured),
    or None without CUDA, pynvml or a readable energy counter."""
    if device_type(device) != "cuda":
        return None
    try:
        import pynvml
        import torch

        pynvml.nvmlInit()
        uuid = str(torch.cuda.get_device_properties(torch.device(device)).uuid)
        handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return handle
    except Exception:  # no pynvml, no driver, a GPU older than Volta: no reading, never a guess
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``slot --gpus N --lock-dir DIR -- COMMAND...`` runs COMMAND on a claimed GPU."""
    parser = argparse.ArgumentParser(prog="python -m lensllm.training.device", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    slot = sub.add_parser("slot", help="run a command with CUDA_VISIBLE_DEVICES set to a free GPU slot")
    slot.add_argument("--gpus", type=int, required=True, help="GPU slots of this machine")
    slot.add_argument("--lock-dir", required=True, help="directory of the slot locks (shared by the run's jobs)")
    slot.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for a free slot")
    slot.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("slot: give the command after --")
    with exit_on_error(ValueError, TimeoutError):
        claimed = claim_gpu_slot(args.gpus, args.lock_dir, timeout=args.timeout)
    try:
        return subprocess.run(cmd, env=os.environ.copy()).returncode
    finally:
        claimed.release()


if __name__ == "__main__":
    sys.exit(main())
