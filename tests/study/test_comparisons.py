"""What a study file declares for its ablations: the metric each contrast compares, trends
along a numeric factor, born-again teachers and step budgets, resolved and checked before
anything runs."""

from __future__ import annotations

import pytest

from harness.config import TrialConfig
from harness.errors import StudyError
from harness.study import config_hash, load_study, mixed_head_warnings, study_from_dict
from tests.helpers import tiny_dict, write_study

FRACTIONS = [0.1, 0.2, 0.4]


def _data_size_study(**trend: object) -> dict:
    declared = {
        "name": "gain_vs_data",
        "factor": "dataset.train_fraction",
        "treatment": {"distill.teachers": ["conv"]},
        "control": {"distill.teachers": []},
        **trend,
    }
    return tiny_dict(
        dataset={"name": "digits", "val_fraction": 0.2},
        grid={"distill.teachers": [[], ["conv"]], "dataset.train_fraction": FRACTIONS},
        trends=[declared],
    )


def test_a_trend_resolves_to_a_contrast_at_every_level_in_increasing_order():
    study = study_from_dict(_data_size_study(metric="test/top1_cls"))
    [trend] = study.trends
    assert [level.value for level in trend.levels] == FRACTIONS
    assert (trend.scale, trend.metric) == ("log", "test/top1_cls")
    for level in trend.levels:
        assert level.treatment.config.dataset.train_fraction == level.value
        assert level.control.config.dataset.train_fraction == level.value
        assert level.treatment.config.distill.teachers == ("conv",)
        assert level.control.config.distill.teachers == ()


@pytest.mark.parametrize(
    ("trend", "expected"),
    [
        ({"factor": "train.lr"}, "trends[0].factor: 'train.lr' is not a grid factor"),
        (
            {"factor": "distill.teachers", "treatment": {"train.lr": 0.1}},
            "a trend needs at least two numeric values",
        ),
        (
            {"treatment": {"distill.teachers": ["conv"], "dataset.train_fraction": 0.1}},
            "trends[0].treatment: gives dataset.train_fraction, the trend's factor; drop it",
        ),
        (
            {"treatment": {"distill.teachers": ["inv"]}},
            "is not a configuration of the grid",
        ),
        ({"scale": "cubic"}, "trends[0].scale: Input should be 'linear' or 'log'"),
        ({"metric": "test/top5"}, "trends[0].metric: Input should be"),
    ],
)
def test_a_bad_trend_is_one_line_naming_the_field(tmp_path, trend, expected):
    path = write_study(tmp_path, _data_size_study(**trend))
    with pytest.raises(StudyError) as info:
        load_study(path)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_a_log_trend_needs_positive_levels():
    data = _data_size_study(factor="train.label_smoothing")
    data["grid"] = {"distill.teachers": [[], ["conv"]], "train.label_smoothing": [0.0, 0.1]}
    with pytest.raises(StudyError, match="log of train.label_smoothing needs values > 0"):
        study_from_dict(data)
    data["trends"][0]["scale"] = "linear"
    assert len(study_from_dict(data).trends[0].levels) == 2


def test_a_seed_plan_may_aim_at_a_trend():
    data = _data_size_study()
    data["seeds"] = {
        "min": 3,
        "max": 8,
        "target": {"halfwidth": 0.01, "contrasts": ["gain_vs_data"]},
    }
    study = study_from_dict(data)
    assert study.trends[0].targeted
    assert not any(c.targeted for c in study.contrasts)


def test_each_contrast_keeps_its_declared_metric():
    data = tiny_dict(
        contrasts=[
            {
                "name": "cls",
                "treatment": {"distill.teachers": ["conv"]},
                "control": {"distill.teachers": []},
                "metric": "test/top1_cls",
            },
            {
                "name": "combined",
                "treatment": {"distill.teachers": ["conv", "inv"]},
                "control": {"distill.teachers": ["conv"]},
            },
        ]
    )
    study = study_from_dict(data)
    assert [c.metric for c in study.contrasts] == ["test/top1_cls", None]
    # The combined prediction of a 3-head and a 2-head student: warned; the class head: not.
    [warning] = mixed_head_warnings(study.contrasts, study.trends)
    assert warning.startswith("warning: combined compares a 3-head and a 2-head student")
    assert "metric: test/top1_cls" in warning


def test_a_born_again_teacher_takes_the_students_fields_as_a_plain_vit():
    data = tiny_dict()
    data["teachers"]["self"] = {"arch": "student", "train": {"epochs": 1}}
    data["grid"] = {"distill.teachers": [[], ["self"]], "student.depth": [1, 2]}
    study = study_from_dict(data)
    taught = [p for p in study.configs if p.config.distill.teachers]
    assert sorted(p.config.teachers["self"].student.depth for p in taught) == [1, 2]
    for point in taught:
        teacher = point.config.teachers["self"].student
        assert teacher.tokens == "none"  # its own students' token mode is not its
        assert teacher.embed_dim == point.config.student.embed_dim


def test_student_fields_belong_to_born_again_teachers_only(tmp_path):
    data = tiny_dict()
    data["teachers"]["conv"]["student"] = {"depth": 2}
    with pytest.raises(StudyError, match="student fields are for arch: student"):
        load_study(write_study(tmp_path, data))


def test_steps_or_epochs_not_both_and_steps_keep_old_hashes(tmp_path):
    with pytest.raises(StudyError, match=r"train: .*epochs \(2\) and steps \(50\) both set"):
        load_study(write_study(tmp_path, tiny_dict(train={"epochs": 2, "steps": 50})))
    with pytest.raises(StudyError, match="warmup_epochs .* and warmup_steps .* both set"):
        study_from_dict(tiny_dict(train={"steps": 50, "warmup_epochs": 1, "warmup_steps": 5}))
    recipe = TrialConfig.model_validate({"train": {"steps": 50, "warmup_steps": 5}}).train
    assert (recipe.total_steps(7), recipe.epochs_for(7), recipe.warmup(7)) == (50, 8, 5)
    with pytest.raises(StudyError, match=r"eval_every \(2\) and eval_every_steps \(9\) both set"):
        study_from_dict(tiny_dict(train={"steps": 50, "eval_every": 2, "eval_every_steps": 9}))
    # New fields left at their defaults change no configuration's hash.
    plain = TrialConfig()
    assert config_hash(plain) == config_hash(TrialConfig.model_validate({"train": {}}))


@pytest.mark.parametrize("per_epoch", [6, 12, 23, 45, 90])
def test_validations_counted_in_steps_are_the_same_whatever_the_data_size(per_epoch):
    """A step budget with eval_every_steps validates as often at every data size (after
    each epoch that passes a multiple of it, and at the end); eval_every counts epochs."""
    steps = {"train": {"steps": 4600, "eval_every_steps": 230}}
    recipe = TrialConfig.model_validate(steps).train
    epochs = range(recipe.epochs_for(per_epoch))
    validated = [e for e in epochs if recipe.validates(e, per_epoch)]
    assert len(validated) == 20 and validated[-1] == len(epochs) - 1
    steps_at = [min(4600, (e + 1) * per_epoch) for e in validated]
    assert [s // 230 for s in steps_at] == list(range(1, 21))  # each multiple once
    by_epochs = TrialConfig.model_validate({"train": {"steps": 4600, "eval_every": 2}}).train
    counted = [e for e in epochs if by_epochs.validates(e, per_epoch)]
    assert counted == [e for e in epochs if (e + 1) % 2 == 0 or e == len(epochs) - 1]
