"""CUDA checks, marked `gpu`: they run on a machine with a GPU (scripts/gpu_check.sh) and are
skipped elsewhere. The bf16-versus-fp32 involution check also runs on the CPU (CPU autocast)."""

from __future__ import annotations

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
