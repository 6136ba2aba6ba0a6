"""CUDA checks, marked `gpu`: they run on a machine with a GPU (scripts/gpu_check.sh) and are
skipped elsewhere. The bf16-versus-fp32 involution check also runs on the CPU (CPU autocast)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

from harness._precision import autocast
from harness.cache import CacheSpec, build_or_load
from harness.data import ViewSchedule, load_dataset
from harness.distill import CachedTeachers, DistillationLoss, OnlineTeachers, image_spec
from harness.models import Involution2d, build_student, build_teacher
from harness.runner import run_study
from harness.store import Store
from harness.study import study_from_dict
from tests.helpers import tiny_dict

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _devices())
def test_involution_in_bf16_is_close_to_fp32(device):
    torch.manual_seed(0)
    module = Involution2d(32, kernel_size=7, stride=2).to(device).eval()
    x = torch.randn(4, 32, 8, 8, device=device)
    reference = module(x)
    with autocast("bf16", torch.device(device)):
        low = module(x)
    error = (low.float() - reference).abs().max() / reference.abs().max()
    assert error < 0.05


def _config():
    return study_from_dict(tiny_dict()).configs[-1].config


@pytest.mark.gpu
@needs_cuda
def test_bf16_loss_close_to_fp32_on_a_fixed_batch():
    config, device = _config(), torch.device("cuda")
    data = load_dataset(config.dataset).to(device)
    torch.manual_seed(0)
    student = build_student(config.student, config.distill, image_spec(data)).to(device)
    teachers = {
        n: build_teacher(config.teachers[n], image_spec(data)).to(device).eval()
        for n in config.distill.teachers
    }
    images = data.normalize(data.train_x[:64])
    logits = OnlineTeachers(teachers).logits(None, None, images)
    criterion = DistillationLoss(distill=config.distill, shared=False, label_smoothing=0.0)
    fp32 = criterion(student.forward_heads(images), data.train_y[:64], logits)["loss"]
    with autocast("bf16", device):
        out = student.forward_heads(images)
    bf16 = criterion(out, data.train_y[:64], logits)["loss"]
    assert abs(bf16.item() - fp32.item()) / fp32.item() < 0.02


@pytest.mark.e2e
@pytest.mark.gpu
@needs_cuda
def test_cached_equals_online_on_gpu(tmp_path):
    config, device = _config(), torch.device("cuda")
    data = load_dataset(config.dataset).to(device)
    torch.manual_seed(0)
    teacher = build_teacher(config.teachers["conv"], image_spec(data)).to(device).eval()
    cache = config.cache.model_copy(update={"dtype": "float32"})
    spec = CacheSpec.of(
        teacher_digest="gpu", data=data, augment=config.augment, cache=cache, precision="bf16"
    )
    table = (
        build_or_load(spec, teacher=teacher, teacher_name="conv", data=data, root=tmp_path)
        .cache.dense()
        .to(device)
    )
    schedule = ViewSchedule(policy=config.augment, views=config.cache.views)
    idx = torch.arange(32, device=device)
    views = schedule.views_for(1, idx)
    images = data.normalize(schedule.images(data.train_x, idx, views))
    online = OnlineTeachers({"conv": teacher}, precision="bf16").logits(idx, views, images)
    cached = CachedTeachers({"conv": table}).logits(idx, views, images)
    assert torch.allclose(cached["conv"], online["conv"], atol=1e-5, rtol=0)


@pytest.mark.e2e
@pytest.mark.gpu
@needs_cuda
def test_two_epoch_trial_end_to_end_on_cuda(tmp_path):
    study = study_from_dict(tiny_dict(seeds=[0], grid={"distill.teachers": [["conv", "inv"]]}))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    summary = run_study(study, store=Store(url), cache_dir=tmp_path / "cache", device="cuda")
    assert summary.complete == 1
    [run] = Store(url).runs("tiny")
    assert run.device.startswith("cuda") and run.epochs_done == 2 and run.cache_status == "built"


ROOT = Path(__file__).resolve().parents[1]


def _bash_array(script: str, name: str) -> set[str]:
    """The words of a bash array `NAME=(...)` in `script`."""
    [words] = re.findall(rf"^{name}=\(([^)]*)\)", script, flags=re.M)
    return set(words.split())


@pytest.mark.e2e
def test_the_gpu_check_runs_with_only_what_the_gpu_machine_has_and_the_carried_wheels(tmp_path):
    """The lent GPU machines reach no registry: scripts/gpu_check.sh runs there on their own
    packages (DEVICE_HAS) and the wheels scripts/gpu_wheels.sh carries (WHEELS). Every other
    dependency of the project is blocked here while the check's path runs on the CPU: its
    modules import, and a distilled trial of the tiny study completes."""
    script = (ROOT / "scripts" / "gpu_wheels.sh").read_text()
    present = {_name(n) for n in _bash_array(script, "DEVICE_HAS") | _bash_array(script, "WHEELS")}
    required = {
        _name(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0])
        for r in metadata.requires("libkd") or []
        if "extra ==" not in r
    }
    left_behind = required - present
    assert left_behind, "nothing left behind: then carry everything and drop this test"
    modules = sorted(
        top
        for top, dists in metadata.packages_distributions().items()
        if any(_name(d) in left_behind for d in dists)
    )
    assert "polars" in modules and "plotly" in modules  # the two too large to carry
    code = f"""
import sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {modules!r}:
            raise ImportError("not on the GPU machine: " + name)
sys.meta_path.insert(0, Blocked())
import tests.test_gpu, harness.bench, harness.cli._tables, harness.cli._tools
from pathlib import Path
from harness.runner import run_study
from harness.store import Store
from harness.study import study_from_dict
from tests.helpers import tiny_dict
study = study_from_dict(tiny_dict(seeds=[0], grid={{"distill.teachers": [["conv", "inv"]]}}))
store, cache = Store("sqlite:///{tmp_path / "db.sqlite"}"), Path({str(tmp_path / "cache")!r})
summary = run_study(study, store=store, cache_dir=cache, device="cpu")
print("complete", summary.complete, "polars" in sys.modules, "plotly" in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "complete 1 False False"


def _name(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()
