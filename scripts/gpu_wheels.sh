#!/usr/bin/env bash
# The wheels the lent GPU machines lack, into .whl/ (ignored by git), for scripts/gpu_check.sh
# there: those machines reach no package registry, but their python3 (CPython 3.12) already
# holds DEVICE_HAS. Run it here (it needs the registry and .venv), then carry .whl.
# The project's other dependencies, polars and plotly, stay behind: polars' runtime wheel alone
# is 54 MB, over what travels, and the GPU check never imports them (tests/test_gpu.py runs
# its path with every dependency outside DEVICE_HAS and WHEELS blocked).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON_VERSION="${PYTHON_VERSION:-3.12}"
DEVICE_HAS=(torch torchvision timm typer rich numpy scipy scikit-learn pyyaml safetensors tqdm
            packaging pytest pillow)
WHEELS=(optuna alembic mako colorlog sqlalchemy pydantic pydantic-core annotated-types
        typing-inspection typing-extensions)
# The versions this machine's tests ran with.
pins=$(.venv/bin/python -c 'import sys, importlib.metadata as m
print(" ".join(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' "${WHEELS[@]}")
rm -rf .whl && mkdir .whl
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: \
    --python-version "$PYTHON_VERSION" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl $pins
du -sh .whl
