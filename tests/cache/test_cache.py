from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from harness.cache import CacheSpec, build_or_load, compute_all, list_caches, open_cache, verify
from harness.config import CacheConfig
from harness.data import ViewSchedule, load_dataset
from harness.distill import CachedTeachers, OnlineTeachers, image_spec, train_student
from harness.models import build_teacher
from harness.study import study_from_dict
from tests.helpers import tiny_dict


def _setup(dtype="float32", views=3, top_k=None):
    study = study_from_dict(
        tiny_dict(cache={"enabled": True, "views": views, "dtype": dtype, "top_k": top_k})
    )
    config = study.configs[-1].config
    data = load_dataset(config.dataset)
    torch.manual_seed(0)
    teacher = build_teacher(config.teachers["conv"], image_spec(data)).eval()
    spec = CacheSpec.of(
        teacher_digest="t-conv", data=data, augment=config.augment, cache=config.cache
    )
    return config, data, teacher, spec


@pytest.mark.e2e
def test_cached_logits_equal_online_logits_for_the_same_views(tmp_path):
    config, data, teacher, spec = _setup("float32")
    result = build_or_load(spec, teacher=teacher, teacher_name="conv", data=data, root=tmp_path)
    assert result.built
    table = result.cache.dense()
    assert table.shape == (len(data.train_y), 3, 10) and table.dtype == torch.float32
    schedule = ViewSchedule(policy=config.augment, views=3)
    idx = torch.tensor([0, 5, 17, 42])
    for epoch in range(4):
        views = schedule.views_for(epoch, idx)
        images = data.normalize(schedule.images(data.train_x, idx, views))
        online = OnlineTeachers({"conv": teacher}).logits(idx, views, images)["conv"]
        cached = CachedTeachers({"conv": table}).logits(idx, views, images)["conv"]
        assert torch.allclose(cached, online, atol=1e-5, rtol=0)


def test_an_interrupted_cache_build_goes_on_from_its_finished_views_to_the_same_entry(tmp_path):
    """Ctrl-C as the third of four views starts: the next build computes views 3 and 4
    only, reads the two it finished, and publishes the bytes an uninterrupted build
    publishes; the finished views are gone once the entry is published. A damaged view
    file is computed again."""
    from harness.cache._logits import done_views_dir

    _, data, teacher, spec = _setup(views=4)
    args = dict(teacher=teacher, teacher_name="conv", data=data)
    whole = build_or_load(spec, root=tmp_path / "a", **args).cache
    started: list[int] = []

    def stop_at_third(view: int, views: int) -> None:
        started.append(view)
        if view == 2 and started.count(2) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_or_load(spec, root=tmp_path / "b", on_view=stop_at_third, **args)
    done = done_views_dir(tmp_path / "b", spec.key)
    assert sorted(p.name for p in done.iterdir()) == ["view-0.pt", "view-1.pt"]
    (done / "view-1.pt").write_bytes(b"cut short")
    saved = torch.load(done / "view-0.pt", weights_only=True)
    assert saved["seconds"] > 0
    torch.save(saved | {"seconds": 1000.0}, done / "view-0.pt")  # as if it took 1000 s
    before = time.perf_counter()
    resumed = build_or_load(spec, root=tmp_path / "b", on_view=stop_at_third, **args)
    this_sitting = time.perf_counter() - before
    assert started == [0, 1, 2, 1, 2, 3]  # view 0 read back; the damaged view 1 computed
    assert resumed.built and resumed.cache.meta["files"] == whole.meta["files"]  # sha256s
    assert not done.exists()
    # Its build cost counts the view computed in the first sitting as well.
    assert 1000.0 < resumed.cache.meta["build_seconds"] < 1000.0 + this_sitting


@pytest.mark.e2e
def test_float16_is_within_its_rounding(tmp_path):
    _, data, teacher, spec = _setup("float16")
    cache = build_or_load(
        spec, teacher=teacher, teacher_name="conv", data=data, root=tmp_path
    ).cache
    exact = compute_all(teacher, data, spec)
    stored = cache.dense().float()
    assert torch.all((stored - exact).abs() <= exact.abs() * 2.0**-11 + 1e-7)
    assert (cache.path / "logits.npy").stat().st_size < exact.numel() * 2 + 256


@pytest.mark.e2e
def test_top_k_keeps_the_top_classes_and_spreads_the_rest(tmp_path):
    _, data, teacher, spec = _setup("float32", top_k=3)
    cache = build_or_load(
        spec, teacher=teacher, teacher_name="conv", data=data, root=tmp_path
    ).cache
    assert sorted(f.name for f in cache.path.iterdir()) == [
        "indices.npy",
        "meta.json",
        "values.npy",
    ]
    exact = torch.log_softmax(compute_all(teacher, data, spec), -1)
    dense = cache.dense()
    assert torch.allclose(dense.exp().sum(-1), torch.ones(dense.shape[:2]), atol=1e-4)
    top = exact.topk(3, -1)
    assert torch.allclose(dense.gather(-1, top.indices), top.values, atol=1e-5)
    assert torch.equal(dense.argmax(-1), exact.argmax(-1))


@pytest.mark.e2e
def test_same_key_is_a_hit_and_key_covers_every_input(tmp_path):
    config, data, teacher, spec = _setup()
    first = build_or_load(spec, teacher=teacher, teacher_name="conv", data=data, root=tmp_path)
    again = build_or_load(spec, teacher=teacher, teacher_name="conv", data=data, root=tmp_path)
    assert first.built and not again.built and again.cache.key == first.cache.key
    variants = [
        CacheSpec.of(teacher_digest="other", data=data, augment=config.augment, cache=config.cache),
        CacheSpec.of(
            teacher_digest="t-conv",
            data=data,
            augment=config.augment.model_copy(update={"aug_seed": 1}),
            cache=config.cache,
        ),
        CacheSpec.of(
            teacher_digest="t-conv",
            data=data,
            augment=config.augment,
            cache=CacheConfig(enabled=True, views=4, dtype="float32"),
        ),
        CacheSpec.of(
            teacher_digest="t-conv",
            data=data,
            augment=config.augment,
            cache=CacheConfig(enabled=True, views=3, dtype="float16"),
        ),
    ]
    assert len({spec.key, *(v.key for v in variants)}) == 5


@pytest.mark.e2e
@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "drop_meta"])
def test_damaged_cache_is_detected_and_rebuilt(tmp_path, damage):
    _, data, teacher, spec = _setup()
    cache = build_or_load(
        spec, teacher=teacher, teacher_name="conv", data=data, root=tmp_path
    ).cache
    array = cache.path / "logits.npy"
    raw = bytearray(array.read_bytes())
    if damage == "truncate":
        array.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip_byte":
        raw[-7] ^= 0xFF
        array.write_bytes(bytes(raw))
    else:
        (cache.path / "meta.json").unlink()
    assert open_cache(cache.path) is None
    rebuilt = build_or_load(spec, teacher=teacher, teacher_name="conv", data=data, root=tmp_path)
    assert rebuilt.built
    assert torch.allclose(rebuilt.cache.dense(), compute_all(teacher, data, spec), atol=1e-6)


@pytest.mark.e2e
def test_verify_reports_small_error_for_a_good_cache(tmp_path):
    _, data, teacher, spec = _setup("float16")
    cache = build_or_load(
        spec, teacher=teacher, teacher_name="conv", data=data, root=tmp_path
    ).cache
    report = verify(cache, teacher=teacher, data=data, spec=spec, samples=64)
    assert report.ok and report.samples == 64 and report.mean_kl < 1e-4
    other = build_teacher(
        study_from_dict(tiny_dict()).configs[-1].config.teachers["conv"], image_spec(data)
    )  # different random weights: a mismatching entry
    assert not verify(cache, teacher=other.eval(), data=data, spec=spec, samples=64).ok


BUILDER = """
import sys, time, torch
from pathlib import Path
import harness.cache._logits as logits
from tests.cache.test_cache import _setup
config, data, teacher, spec = _setup()
if sys.argv[2] == "slow":
    real = logits._write_arrays
    def slow(folder, values, spec):
        out = real(folder, values, spec)
        print("WRITTEN", flush=True)
        time.sleep(60)
        return out
    logits._write_arrays = slow
res = logits.build_or_load(spec, teacher=teacher, teacher_name="conv", data=data,
                           root=Path(sys.argv[1]))
print("BUILT" if res.built else "HIT", res.cache.key, flush=True)
"""


def _builder(root: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", BUILDER, str(root), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )


@pytest.mark.e2e
def test_build_killed_midway_leaves_nothing_readable(tmp_path):
    proc = _builder(tmp_path, "slow")
    assert proc.stdout.readline().strip() == "WRITTEN"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list_caches(tmp_path) == []  # only a private .tmp folder, never a published entry
    _, data, teacher, spec = _setup()
    assert open_cache(tmp_path / "logits" / spec.key) is None
    assert [p.name[:5] for p in (tmp_path / "logits").glob(".tmp-*")] == [".tmp-"]
    result = build_or_load(spec, teacher=teacher, teacher_name="conv", data=data, root=tmp_path)
    assert result.built and open_cache(result.cache.path) is not None
    # The next builder of the key removed the dead one's staging folder.
    assert list((tmp_path / "logits").glob(".tmp-*")) == []


@pytest.mark.e2e
def test_two_concurrent_builders_produce_one_valid_cache(tmp_path):
    procs = [_builder(tmp_path, "fast") for _ in range(2)]
    outputs = sorted(p.communicate(timeout=120)[0].split()[0] for p in procs)
    assert outputs == ["BUILT", "HIT"]  # the second waited for the first, then read it
    entries = list_caches(tmp_path)
    assert len(entries) == 1 and open_cache(entries[0].path) is not None
    leftovers = [p for p in (tmp_path / "logits").iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []


@pytest.mark.e2e
def test_cached_and_online_training_are_the_same_experiment(tmp_path):
    config, data, teacher, spec = _setup("float32")
    table = build_or_load(
        spec, teacher=teacher, teacher_name="conv", data=data, root=tmp_path
    ).cache.dense()
    one = config.model_copy(
        update={"distill": config.distill.model_copy(update={"teachers": ("conv",)})}
    )
    cached = train_student(
        config=one,
        seed=0,
        data=data,
        teachers=CachedTeachers({"conv": table}),
        device=torch.device("cpu"),
    )
    online = train_student(
        config=one,
        seed=0,
        data=data,
        teachers=OnlineTeachers({"conv": teacher}),
        device=torch.device("cpu"),
    )
    for a, b in zip(cached.history, online.history):
        assert a.metrics["train/kd/conv"] == pytest.approx(b.metrics["train/kd/conv"], rel=1e-4)
        assert a.metrics["val/top1"] == pytest.approx(b.metrics["val/top1"], abs=0.02)


def test_batch_bounds_join_the_remainder_to_the_last_full_batch():
    from harness._precision import batch_bounds

    assert batch_bounds(66, 32) == [(0, 32), (32, 66)]
    assert batch_bounds(64, 32) == [(0, 32), (32, 64)]
    assert batch_bounds(20, 32) == [(0, 20)]
    assert batch_bounds(0, 32) == []
    bounds = batch_bounds(2850, 32)
    assert bounds[0] == (0, 32) and bounds[-1] == (2816, 2850) and len(bounds) == 89
    assert all(stop == start for (_, stop), (start, _) in zip(bounds, bounds[1:]))


@pytest.mark.parametrize("name", ["conv", "inv"])
def test_a_cpu_build_infers_in_small_batches_and_its_logits_equal_one_big_batchs(name):
    """On the CPU a teacher infers `TEACHER_BATCH_CPU` images at a time (its activations
    stay in the core's caches) and never fewer (a batch under 16 images takes other
    convolution kernels, which round differently: 66 images would leave a last batch of 2);
    every image's logits are those of one big batch, bit for bit, so the cache's bytes do
    not depend on the batch."""
    import dataclasses

    from harness._precision import TEACHER_BATCH_CPU, teacher_batch_size

    study = study_from_dict(tiny_dict(cache={"enabled": True, "views": 2, "dtype": "float32"}))
    config = study.configs[-1].config
    data = load_dataset(config.dataset)
    data = dataclasses.replace(data, train_x=data.train_x[:66], train_y=data.train_y[:66])
    torch.manual_seed(0)
    teacher = build_teacher(config.teachers[name], image_spec(data)).eval()
    spec = CacheSpec.of(teacher_digest="t", data=data, augment=config.augment, cache=config.cache)
    seen: list[int] = []
    hook = teacher.register_forward_pre_hook(lambda _, args: seen.append(len(args[0])))
    small = compute_all(teacher, data, spec)
    hook.remove()
    assert teacher_batch_size(torch.device("cpu")) == TEACHER_BATCH_CPU == 32
    assert seen == [32, 34] * 2  # two views
    assert teacher_batch_size(torch.device("cuda")) == 512
    assert torch.equal(small, compute_all(teacher, data, spec, batch_size=512))
