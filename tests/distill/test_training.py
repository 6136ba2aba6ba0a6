from __future__ import annotations

import math

import pytest
import torch

from harness.data import load_dataset
from harness.distill import OnlineTeachers, obtain_teacher, train_student
from harness.study import study_from_dict
from tests.helpers import tiny_dict


def _setup(cache_dir):
    study = study_from_dict(tiny_dict())
    config = study.configs[-1].config
    data = load_dataset(config.dataset)
    return study, config, data


def _plain(config, **train):
    """The plain-ViT version of `config`, with training recipe fields replaced."""
    return config.model_copy(
        update={
            "distill": config.distill.model_copy(update={"teachers": ()}),
            "student": config.student.model_copy(update={"tokens": "none"}),
            "train": config.train.model_copy(update=train),
        }
    )


@pytest.mark.e2e
def test_teacher_is_trained_once_and_then_reused(tmp_path):
    _, config, data = _setup(tmp_path)
    args = dict(data=data, augment=config.augment, cache_dir=tmp_path, device=torch.device("cpu"))
    first = obtain_teacher("conv", config.teachers["conv"], **args)
    second = obtain_teacher("conv", config.teachers["conv"], **args)
    assert first.built and not second.built
    assert first.digest == second.digest and first.key == second.key
    x = data.normalize(data.val_x[:4])
    first.model.eval()
    assert torch.equal(first.model(x), second.model(x))


@pytest.mark.e2e
def test_corrupt_teacher_checkpoint_is_retrained(tmp_path):
    _, config, data = _setup(tmp_path)
    args = dict(data=data, augment=config.augment, cache_dir=tmp_path, device=torch.device("cpu"))
    first = obtain_teacher("conv", config.teachers["conv"], **args)
    weights = first.path / "teacher.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    again = obtain_teacher("conv", config.teachers["conv"], **args)
    assert again.built


@pytest.mark.e2e
def test_teacher_from_local_checkpoint(tmp_path):
    _, config, data = _setup(tmp_path)
    args = dict(data=data, augment=config.augment, cache_dir=tmp_path, device=torch.device("cpu"))
    trained = obtain_teacher("conv", config.teachers["conv"], **args)
    imported_config = config.teachers["conv"].model_copy(
        update={"checkpoint": str(trained.path / "teacher.safetensors")}
    )
    imported = obtain_teacher("conv", imported_config, **args)
    assert imported.key != trained.key and imported.digest == trained.digest


@pytest.mark.e2e
def test_training_records_every_term_and_head_each_epoch(tmp_path):
    _, config, data = _setup(tmp_path)
    teachers = {
        name: obtain_teacher(
            name,
            config.teachers[name],
            data=data,
            augment=config.augment,
            cache_dir=tmp_path,
            device=torch.device("cpu"),
        ).model
        for name in config.distill.teachers
    }
    seen = []
    result = train_student(
        config=config,
        seed=0,
        data=data,
        teachers=OnlineTeachers(teachers),
        device=torch.device("cpu"),
        on_epoch=seen.append,
    )
    assert [r.epoch for r in seen] == [0, 1]
    metrics = result.final
    for name in (
        "train/loss",
        "train/cls",
        "train/kd/conv",
        "train/kd/inv",
        "val/top1",
        "val/top1_cls",
        "val/top1_conv",
        "val/top1_inv",
        "lr",
        "samples_per_second",
    ):
        assert name in metrics, name
    assert 0.0 <= metrics["val/top1"] <= 1.0


@pytest.mark.e2e
def test_same_seed_same_result(tmp_path):
    _, config, data = _setup(tmp_path)
    plain = _plain(config)
    a = train_student(config=plain, seed=3, data=data, teachers=None, device=torch.device("cpu"))
    b = train_student(config=plain, seed=3, data=data, teachers=None, device=torch.device("cpu"))
    assert a.final["train/loss"] == b.final["train/loss"]


@pytest.mark.e2e
@pytest.mark.slow
def test_compiled_student_trains_and_records_compile_time_apart(tmp_path):
    _, config, data = _setup(tmp_path)
    plain = _plain(config, compile=True, epochs=1)
    result = train_student(
        config=plain, seed=0, data=data, teachers=None, device=torch.device("cpu")
    )
    assert result.compile_seconds > 0
    assert math.isfinite(result.final["train/loss"]) and 0 <= result.final["val/top1"] <= 1


@pytest.mark.e2e
def test_eval_every_validates_every_k_epochs_and_after_the_last(tmp_path):
    _, config, data = _setup(tmp_path)
    plain = _plain(config, epochs=5, eval_every=2)
    result = train_student(
        config=plain, seed=0, data=data, teachers=None, device=torch.device("cpu")
    )
    evaluated = [r.epoch for r in result.history if "val/top1" in r.metrics]
    assert evaluated == [1, 3, 4]
    assert all("train/loss" in r.metrics for r in result.history)
