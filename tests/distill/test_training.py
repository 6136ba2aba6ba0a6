from __future__ import annotations

import math
import time

import pytest
import torch

from harness.cache import obtain_teacher
from harness.data import load_dataset
from harness.distill import OnlineTeachers, train_student
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


@pytest.mark.e2e
def test_a_step_budget_trains_exactly_that_many_steps_whatever_the_data_size(tmp_path, monkeypatch):
    _, config, data = _setup(tmp_path)
    per_epoch = math.ceil(len(data.train_y) / config.train.batch_size)
    budget = 2 * per_epoch + 1  # the third epoch stops after one batch
    recipe = config.train.model_copy(
        update={
            "steps": budget,
            "warmup_steps": 2,
            "warmup_epochs": 0,
            "eval_every_steps": per_epoch + 1,
        }
    )
    plain = _plain(config).model_copy(update={"train": recipe})
    steps = []
    real = torch.optim.AdamW.step

    def counted(self, *args, **kwargs):
        steps.append(self.param_groups[0]["lr"])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counted)
    seen = []
    train_student(
        config=plain,
        seed=0,
        data=data,
        teachers=None,
        device=torch.device("cpu"),
        on_epoch=seen.append,
    )
    assert len(steps) == budget
    assert [r.epoch for r in seen] == [0, 1, 2]
    # Validated where the step count passes per_epoch + 1 (epoch 1), and at the end.
    assert [r.epoch for r in seen if "val/top1" in r.metrics] == [1, 2]
    # Warm-up counts steps; the cosine reaches its end at the budget's last step.
    assert steps[0] == pytest.approx(recipe.lr / 2)
    assert steps[1] == pytest.approx(recipe.lr)
    assert seen[-1].metrics["lr"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.e2e
def test_a_born_again_teacher_is_the_students_vit_trained_and_kept_like_any_teacher(tmp_path):
    data_dict = tiny_dict()
    data_dict["teachers"]["self"] = {"arch": "student", "train": {"epochs": 1, "batch_size": 32}}
    data_dict["grid"] = {"distill.teachers": [["self"]]}
    config = study_from_dict(data_dict).configs[0].config
    data = load_dataset(config.dataset)
    args = dict(data=data, augment=config.augment, cache_dir=tmp_path, device=torch.device("cpu"))
    built = obtain_teacher("self", config.teachers["self"], **args)
    again = obtain_teacher("self", config.teachers["self"], **args)
    assert built.built and not again.built and built.key == again.key
    assert type(built.model).__name__ == "DistilledViT"
    assert built.model.embed_dim == config.student.embed_dim
    assert built.model(data.normalize(data.val_x[:3])).shape == (3, 10)


def _longer_teacher(config, epochs: int = 4):
    teacher = config.teachers["conv"]
    return teacher.model_copy(update={"train": teacher.train.model_copy(update={"epochs": epochs})})


@pytest.mark.e2e
def test_an_interrupted_teacher_build_goes_on_from_its_last_epoch_to_the_same_teacher(
    tmp_path,
):
    """Ctrl-C as the third of four epochs starts: the next build trains epochs 3 and 4
    only, from the state written after the second, and stores the teacher an uninterrupted
    build stores, bit for bit; the state file is gone once the teacher is stored."""
    _, config, data = _setup(tmp_path)
    teacher = _longer_teacher(config)
    cpu = torch.device("cpu")
    whole = obtain_teacher(
        "conv", teacher, data=data, augment=config.augment, cache_dir=tmp_path / "a", device=cpu
    )
    started: list[int] = []

    def stop_at_third(epoch: int, epochs: int) -> None:
        started.append(epoch)
        if epoch == 2 and started.count(2) == 1:
            raise KeyboardInterrupt

    args = dict(data=data, augment=config.augment, cache_dir=tmp_path / "b", device=cpu)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("harness.distill._resume.RESUME_EVERY_SECONDS", 0.0)
        with pytest.raises(KeyboardInterrupt):
            obtain_teacher("conv", teacher, on_epoch=stop_at_third, **args)
        [state] = (tmp_path / "b" / "teachers").glob(".*.resume.pt")
        saved = torch.load(state, weights_only=True)
        assert saved["seconds"] > 0  # the first sitting's training
        torch.save(saved | {"seconds": 1000.0}, state)  # as if it had trained for 1000 s
        before = time.perf_counter()
        resumed = obtain_teacher("conv", teacher, on_epoch=stop_at_third, **args)
        this_sitting = time.perf_counter() - before
    assert started == [0, 1, 2, 2, 3]
    assert resumed.built and resumed.key == whole.key
    assert resumed.digest == whole.digest  # the stored weights, byte for byte
    assert not state.exists()
    # Its cost is both sittings' training: this call's and the one it went on from.
    assert 1000.0 < resumed.seconds < 1000.0 + this_sitting


def test_a_resume_state_for_other_training_or_half_written_is_not_used(tmp_path):
    from harness.distill._resume import read_state, write_state
    from harness.inputs import TRAINING_BEHAVIOUR

    path = tmp_path / "t" / ".k.resume.pt"
    write_state(path, {"epoch": 2, "left": 10, "epochs": 4, "per_epoch": 5})
    assert read_state(path, 4, 5) == {
        "epoch": 2,
        "left": 10,
        "epochs": 4,
        "per_epoch": 5,
        "behaviour": TRAINING_BEHAVIOUR,
    }
    assert read_state(path, 6, 5) is None  # another epoch count: start over
    assert read_state(path, 4, 3) is None  # another batch count
    assert list(path.parent.iterdir()) == [path]  # no temporary file left beside it
    path.write_bytes(path.read_bytes()[:-20])  # cut short
    assert read_state(path, 4, 5) is None
    assert read_state(tmp_path / "none.pt", 4, 5) is None


def _resumable(path, every):
    from harness.distill._resume import Resumable

    model = torch.nn.Linear(2, 2)
    parts = {"model": model, "optimizer": torch.optim.SGD(model.parameters(), lr=0.1)}
    return Resumable(path, parts, torch.Generator(), torch.device("cpu"), 4, 5, every)


def test_a_resume_state_is_written_when_due_or_forced_and_a_failed_write_only_warns(tmp_path):
    path = tmp_path / ".k.resume.pt"
    state = _resumable(path, every=3600.0)
    state.save(epoch=1, left=15, extra={})
    assert not path.exists()  # not due an hour early
    state.save(epoch=1, left=15, extra={"history": [1.5]}, force=True)
    assert _resumable(path, every=0.0).load()["history"] == [1.5]
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the state's folder would be: the write fails
    with pytest.warns(UserWarning, match="not written"):
        _resumable(blocked / ".k.resume.pt", every=0.0).save(epoch=1, left=15, extra={})


@pytest.mark.e2e
@pytest.mark.parametrize("budget", ["epochs", "steps"])
def test_an_interrupted_student_goes_on_from_its_last_epoch_to_the_same_result(tmp_path, budget):
    """Ctrl-C as the third of four epochs is reported: the next call hands the stored
    epochs to `on_epoch` again, trains the rest, and ends where an uninterrupted call ends,
    bit for bit; after the last epoch a call with the file trains nothing. With a step
    budget the fourth epoch stops after one batch, and the steps left are kept too."""
    _, config, data = _setup(tmp_path)
    per_epoch = math.ceil(len(data.train_y) / config.train.batch_size)
    if budget == "epochs":
        plain = _plain(config, epochs=4)
    else:
        plain = _plain(config, steps=3 * per_epoch + 1, warmup_steps=2, warmup_epochs=0)
    cpu = torch.device("cpu")
    whole = train_student(config=plain, seed=3, data=data, teachers=None, device=cpu)
    seen: list[int] = []

    def stop_at_third(report) -> None:
        seen.append(report.epoch)
        if report.epoch == 2 and seen.count(2) == 1:
            raise KeyboardInterrupt

    path = tmp_path / "students" / ".k.resume.pt"
    args = dict(config=plain, seed=3, data=data, teachers=None, device=cpu, resume=path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("harness.distill._resume.RESUME_EVERY_SECONDS", 0.0)
        with pytest.raises(KeyboardInterrupt):
            train_student(on_epoch=stop_at_third, **args)
        resumed = train_student(on_epoch=stop_at_third, **args)
    assert seen == [0, 1, 2, 0, 1, 2, 3]  # the stored three are reported again, then the 4th
    assert resumed.resumed_epochs == 3
    assert resumed.resumed_from == [{"epochs": 3}]  # one earlier sitting (no origin given)
    for mine, theirs in zip(resumed.model.state_dict().values(), whole.model.state_dict().values()):
        assert torch.equal(mine, theirs)
    timeless = [{k: v for k, v in r.metrics.items() if "second" not in k} for r in whole.history]
    assert [
        {k: v for k, v in r.metrics.items() if "second" not in k} for r in resumed.history
    ] == timeless
    again = train_student(**args)  # the state after the last epoch: nothing left to train
    assert again.resumed_epochs == 4 and again.final == resumed.final
