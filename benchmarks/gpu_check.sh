#!/usr/bin/env bash
# The GPU path of lensllm, checked on a machine with one CUDA GPU, in under 8 minutes:
#   benchmarks/gpu_check.sh OUT_DIR
# Needs the repository and a Python with torch (CUDA), transformers, accelerate, pandas and pytest
# (peft for LoRA, nvidia-ml-py for the energy reading); PYTHON picks the interpreter (default python).
# Writes to OUT_DIR:
#   environment.txt   nvidia-smi, torch and package versions
#   gpu_tests.txt     pytest -m gpu: CUDA vs CPU losses in fp32/bf16/fp16, micro-batches, LoRA,
#                     Hessian trace, NTK, energy from NVML, the GPU slot seen by torch
#   quick/            the quick grid with finetune.device: cuda, precision: bf16 (Snakemake only;
#                     skipped with a message where snakemake cannot be imported)
#   jobs.tsv, jobs/   fine-tuning jobs through `python -m lensllm.training.finetune` on each device/precision
#   throughput.tsv    our loop against transformers.Trainer (tokens/s, FLOP/s, peak memory, MFU)
#   summary.txt       what passed and what failed; the exit status is 0 only if everything passed
set -u
OUT=${1:?usage: benchmarks/gpu_check.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python}
START=$(date +%s)
status=0
note() { echo "$*" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"

{
  nvidia-smi || echo "nvidia-smi: not available"
  "$PY" - <<'PY'
import importlib, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
for name in ("transformers", "peft", "accelerate", "pynvml", "snakemake", "datasets", "pandas", "pytest"):
    try:
        print(name, getattr(importlib.import_module(name), "__version__", "installed"))
    except ImportError:
        print(name, "not installed")
PY
} > "$OUT/environment.txt" 2>&1

# 1. The GPU-marked tests (they also run, and skip, in `make test` on the CPU).
if timeout 240 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/unit/test_device.py tests/unit/test_finetune.py \
    > "$OUT/gpu_tests.txt" 2>&1; then
  note "gpu tests: passed ($(tail -1 "$OUT/gpu_tests.txt"))"
else
  status=1; note "gpu tests: FAILED (see gpu_tests.txt: $(tail -1 "$OUT/gpu_tests.txt"))"
fi

# 2. The quick grid on the GPU, through Snakemake where it is installed (it also needs the offline
#    sources, fetched from PyPI and Debian, or a copy in results/sources).
if "$PY" -c "import snakemake" 2>/dev/null; then
  cat > "$OUT/gpu-quick.yaml" <<'YAML'
run_name: gpu-quick
finetune: {device: cuda, precision: bf16}
ntk: {device: cuda}
YAML
  if timeout 200 "$PY" -m snakemake --cores 4 --configfile config/quick.yaml "$OUT/gpu-quick.yaml" \
      > "$OUT/quick.log" 2>&1; then
    cp -r results/gpu-quick "$OUT/quick"; note "quick grid on cuda/bf16: done (quick/)"
  else
    status=1; note "quick grid on cuda/bf16: FAILED (see quick.log)"
  fi
else
  note "quick grid: skipped, snakemake is not importable here; the jobs below run through python -m lensllm.training.finetune"
fi

# 3. Jobs through the command line, and the throughput against transformers.Trainer.
if timeout 300 "$PY" benchmarks/gpu_throughput.py --out "$OUT" > "$OUT/throughput.log" 2>&1; then
  note "command-line jobs and throughput: done (jobs.tsv, throughput.tsv)"
else
  status=1; note "command-line jobs and throughput: FAILED (see throughput.log)"
fi
note "total: $(( $(date +%s) - START )) s, status $status"
exit $status
