"""One suite per registry, parametrised over every entry, so an entry added later is tested
by what its kind promises."""

from __future__ import annotations

import typing

import numpy as np
import optuna
import pytest
import torch

from harness.config import DatasetConfig, DistillConfig, SearchConfig, StudentConfig, TeacherConfig
from harness.data import DATASETS, load_dataset
from harness.distill import LOSSES
from harness.errors import DataError
from harness.models import TEACHERS, TOKEN_MODES, ImageSpec, build_student, build_teacher
from harness.runner import STRATEGIES
from harness.study import PRUNERS, SAMPLERS, check_search, suggest

IMAGE = ImageSpec(channels=1, size=8, num_classes=10)
SPACE = {
    "distill.temperature": {"type": "float", "low": 1.0, "high": 8.0, "log": True},
    "train.epochs": {"type": "int", "low": 1, "high": 4},
    "distill.teachers": {"type": "categorical", "choices": [["conv"], ["conv", "inv"]]},
}


def _literal_choices(model: type, field: str) -> set[str]:
    return set(typing.get_args(model.model_fields[field].annotation))


def test_schema_choices_are_the_registered_entries():
    assert _literal_choices(DistillConfig, "loss") == set(LOSSES.names())
    assert _literal_choices(StudentConfig, "tokens") == set(TOKEN_MODES.names())
    assert _literal_choices(SearchConfig, "sampler") == set(SAMPLERS.names())
    assert _literal_choices(SearchConfig, "pruner") == set(PRUNERS.names())
    assert set(STRATEGIES.names()) == {"grid", "search"}


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_every_sampler_draws_valid_points_of_the_types_it_declares(name):
    info = SAMPLERS.get(name)
    space = {p: s for p, s in SPACE.items() if s["type"] in info.param_types}
    search = SearchConfig.model_validate({"sampler": name, "n_trials": 6, "space": space})
    check_search(search, where="")
    study = optuna.create_study(sampler=info.make(search))
    points = []

    def objective(trial: optuna.Trial) -> float:
        point = suggest(trial, search)
        points.append(point)
        return float(point.get("train.epochs", 1)) + float(point.get("distill.temperature", 1))

    study.optimize(objective, n_trials=6)
    assert len(points) == 6
    for point in points:
        assert set(point) == set(space)
        if "distill.temperature" in point:
            assert 1.0 <= point["distill.temperature"] <= 8.0
        if "train.epochs" in point:
            assert point["train.epochs"] in range(1, 5)
        assert point["distill.teachers"] in (["conv"], ["conv", "inv"])
    assert len({str(p) for p in points}) > 1  # it explores


@pytest.mark.parametrize("name", PRUNERS.names())
def test_every_pruner_follows_reported_curves(name):
    search = SearchConfig.model_validate({"pruner": name, "space": SPACE})
    pruner = PRUNERS.get(name)(search, 8)
    study = optuna.create_study(direction="maximize", pruner=pruner)

    def objective(trial: optuna.Trial) -> float:
        quality = trial.number % 2  # half the trials learn, half do not
        for epoch in range(8):
            trial.report(quality * epoch / 8, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(quality)

    study.optimize(objective, n_trials=16)
    states = {t.state for t in study.trials}
    assert optuna.trial.TrialState.COMPLETE in states
    pruned = optuna.trial.TrialState.PRUNED in states
    assert pruned == (name != "none")  # every real pruner stops some flat curve


@pytest.mark.parametrize("name", TEACHERS.names())
def test_every_teacher_arch_builds_what_its_width_rule_allows(name):
    arch = TEACHERS.get(name)
    for width in (8, 16, 24, 32):
        if arch.width_problem(width) is None:
            model = build_teacher(TeacherConfig(arch=name, width=width), IMAGE)
            assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
        else:
            with pytest.raises(ValueError):
                build_teacher(TeacherConfig(arch=name, width=width), IMAGE)


@pytest.mark.parametrize("name", TOKEN_MODES.names())
@pytest.mark.parametrize("teachers", [(), ("conv",), ("conv", "inv")])
def test_every_token_mode_builds_its_tokens_and_runs_as_its_canonical_mode(name, teachers):
    mode = TOKEN_MODES.get(name)
    if teachers and not mode.takes_teachers:
        return
    student = build_student(
        StudentConfig(tokens=name, embed_dim=16, depth=1, num_heads=2, patch_size=2),
        DistillConfig(teachers=teachers),
        IMAGE,
    )
    tokens = mode.tokens(teachers)
    assert list(student.dist_heads) == list(tokens)
    # The mode it runs as gives the same tokens up to naming: same count of heads.
    same = TOKEN_MODES.get(mode.runs_as(len(teachers))).tokens(teachers)
    assert len(same) == len(tokens)


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_kind_says_truly_whether_the_temperature_matters(name):
    kind = LOSSES.get(name)
    generator = torch.Generator().manual_seed(0)
    student, teacher = (
        torch.randn(16, 10, generator=generator),
        torch.randn(16, 10, generator=generator),
    )
    at_1, at_4 = kind.term(student, teacher, 1.0), kind.term(student, teacher, 4.0)
    assert torch.isfinite(at_1) and at_1 >= 0
    assert (not torch.equal(at_1, at_4)) == kind.uses_temperature
    log_probs = torch.log_softmax(teacher, dim=-1)
    assert torch.isfinite(kind.ensemble_term(student, log_probs, 2.0))


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_has_the_image_side_it_declares(name, tmp_path):
    config = DatasetConfig(name=name)
    if name == "imagefolder":
        from PIL import Image

        for split in ("train", "val"):
            for label in ("a", "b"):
                folder = tmp_path / split / label
                folder.mkdir(parents=True)
                for i in range(3):
                    pixels = np.full((12, 12, 3), 40 * i, dtype=np.uint8)
                    Image.fromarray(pixels).save(folder / f"{i}.png")
        config = DatasetConfig(name=name, path=str(tmp_path), image_size=8)
    info = DATASETS.get(name)
    if info.problem(config) is not None:
        pytest.fail(f"{name}: {info.problem(config)}")
    try:
        data = load_dataset(config)
    except DataError as exc:  # the files of this dataset are not on this machine
        assert name in ("cifar10", "cifar100") and "not found" in str(exc)
        return
    assert data.image_size == info.image_size(config)
    assert data.train_x.dtype == torch.uint8 and len(data.train_x) > 0
