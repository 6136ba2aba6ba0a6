#!/usr/bin/env bash
# GPU check for a CUDA machine: the gpu-marked tests and the GPU benchmark, everything written to
# $OUT (default results/gpu). Meant to finish within 8 minutes.
#
# On a machine without a package registry whose python3 holds torch (the lent GPU machines),
# run scripts/gpu_wheels.sh here first and carry .whl: the wheels install into /tmp/site with no
# index. Elsewhere it makes .venv and installs the project as the README does.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-results/gpu}"
mkdir -p "$OUT"
start=$(date +%s)
if [ -d .whl ] && python3 -c "import torch" 2>/dev/null; then
    python=python3
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl > "$OUT/setup.log" 2>&1
    export PYTHONPATH="/tmp/site:$PWD"
else
    python=.venv/bin/python
    { python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'; } > "$OUT/setup.log" 2>&1
fi
{
    nvidia-smi || true
    "$python" -c "import torch, timm, optuna; print('torch', torch.__version__, 'cuda',
        torch.cuda.is_available(), 'timm', timm.__version__, 'optuna', optuna.__version__)"
    echo "install: $(( $(date +%s) - start )) s"
} >> "$OUT/setup.log" 2>&1
export PYTHONUNBUFFERED=1
set +e  # the benchmark runs even if a test fails; the exit status reports both
"$python" -m pytest -p no:cacheprovider -m gpu -v tests/test_gpu.py 2>&1 | tee "$OUT/gpu-tests.log"
tests=${PIPESTATUS[0]}
"$python" -m harness.cli bench --device cuda --batch-size 256 --batch-size 512 \
    --batch-size 1024 --windows 60 --steps 5 --study studies/cifar_bench.yaml \
    --out "$OUT/bench-gpu.json" 2>&1 | tee "$OUT/bench-gpu.log"
bench=${PIPESTATUS[0]}
echo "total: $(( $(date +%s) - start )) s; tests exit $tests, bench exit $bench" \
    | tee -a "$OUT/setup.log"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
