#!/usr/bin/env bash
# GPU check for a fresh CUDA machine: install, run the gpu-marked tests and the GPU benchmark,
# and write everything to $OUT (default results/gpu). Meant to finish within 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-results/gpu}"
mkdir -p "$OUT"
start=$(date +%s)
{
    nvidia-smi || true
    python3 -m venv .venv
    .venv/bin/pip install -q -e '.[test]'
    echo "install: $(( $(date +%s) - start )) s"
} > "$OUT/setup.log" 2>&1
.venv/bin/python -m pytest -m gpu -v tests/test_gpu.py 2>&1 | tee "$OUT/gpu-tests.log"
.venv/bin/libkd bench --device cuda --batch-size 256 --batch-size 512 --batch-size 1024 --windows 60 --steps 5 \
    --study studies/cifar_bench.yaml --out "$OUT/bench-gpu.json" 2>&1 | tee "$OUT/bench-gpu.log"
echo "total: $(( $(date +%s) - start )) s" | tee -a "$OUT/setup.log"
