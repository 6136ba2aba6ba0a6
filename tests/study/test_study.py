from __future__ import annotations

import pytest

from harness.errors import StudyError
from harness.models import rednet_width_problem
from harness.study import config_hash, load_study, study_from_dict
from tests.helpers import tiny_dict, write_study


def test_grid_expands_to_configurations_times_seeds():
    study = study_from_dict(tiny_dict())
    assert [c.config.distill.teachers for c in study.configs] == [(), ("conv",), ("conv", "inv")]
    trials = study.trials()
    assert len(trials) == 3 * 2
    # Seeds outermost: every configuration's first seed comes before any second seed.
    assert [(t.config_hash, t.seed) for t in trials[:4]] == [
        (study.configs[0].config_hash, 0),
        (study.configs[1].config_hash, 0),
        (study.configs[2].config_hash, 0),
        (study.configs[0].config_hash, 1),
    ]


def test_hash_excludes_seed_and_is_stable_across_loads(tmp_path):
    first = study_from_dict(tiny_dict())
    second = load_study(write_study(tmp_path, tiny_dict(seeds=[5, 6, 7])))
    assert [c.config_hash for c in first.configs] == [c.config_hash for c in second.configs]
    # Known value: changing it means every stored study would stop resuming.
    assert len(first.configs[0].config_hash) == 64


def test_hash_changes_with_any_experiment_setting():
    base = study_from_dict(tiny_dict()).configs[-1]
    hotter = study_from_dict(tiny_dict(distill={"teachers": ["conv", "inv"], "temperature": 4.0}))
    assert hotter.configs[-1].config_hash != base.config_hash


def test_plain_vit_configurations_collapse_to_one_hash():
    # Without teachers, temperature and token mode cannot matter: one baseline, not three.
    study = study_from_dict(
        tiny_dict(grid={"distill.teachers": [[], ["conv"]], "distill.temperature": [1.0, 2.0, 4.0]})
    )
    assert len(study.configs) == 1 + 3
    plain = study.configs[0].config
    assert plain.student.tokens == "none" and plain.teachers == {}


def test_cache_dir_does_not_change_hash():
    a = study_from_dict(tiny_dict(cache={"enabled": True, "views": 2, "dir": "/a"}))
    b = study_from_dict(tiny_dict(cache={"enabled": True, "views": 2, "dir": "/b"}))
    assert config_hash(a.configs[1].config) == config_hash(b.configs[1].config)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"trian": {}}, "trian: unknown key; allowed keys here: dataset, augment"),
        ({"train": {"epochs": "many"}}, "train.epochs: Input should be a valid integer"),
        ({"train": {"epochs": 2, "lrr": 1}}, "train.lrr: unknown key; allowed keys here: epochs"),
        ({"distill": {"teachers": ["cnn"]}}, "distill.teachers: unknown teacher 'cnn'; declared"),
        ({"grid": {"distill.temprature": [1, 2]}}, "grid.distill.temprature: no such parameter"),
        ({"grid": {"distill.teachers": [["conv"], ["nope"]]}}, "unknown teacher 'nope'"),
        (
            {"teachers": {"conv": {"arch": "vgg"}}},
            "teachers.conv.arch: unknown teacher architecture",
        ),
        (
            {"dataset": {"name": "mnist"}},
            "dataset.name: unknown dataset 'mnist'; known: cifar10, cifar100, digits",
        ),
        ({"student": {"tokens": "many"}}, "student.tokens: Input should be 'none', 'per_teacher'"),
        ({"objectives": [{"metric": "acc"}]}, "objectives[0].metric: unknown metric 'acc'"),
        ({"seeds": []}, "seeds: Tuple should have at least 1 item"),
        ({"include": [{"student.tokenz": "stem"}]}, "include[0].student.tokenz: no such parameter"),
        ({"include": [{}]}, "include[0]: empty; give the factors"),
        ({"include": [{"student.tokens": "many"}]}, "include[0]: student.tokens: Input should be"),
    ],
)
def test_bad_study_gives_one_line_error_naming_the_field(tmp_path, change, expected):
    path = write_study(tmp_path, tiny_dict(**change))
    with pytest.raises(StudyError) as info:
        load_study(path)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert str(path) in message


def test_shared_token_needs_one_temperature():
    with pytest.raises(StudyError, match="shared token averages teachers at one temperature"):
        study_from_dict(
            tiny_dict(
                student={"tokens": "shared"},
                distill={"teachers": ["conv", "inv"], "temperature": {"conv": 1.0, "inv": 4.0}},
                grid={},
            )
        )


def test_per_teacher_temperature_must_cover_every_teacher():
    with pytest.raises(StudyError, match=r"no temperature for \['inv'\]"):
        study_from_dict(
            tiny_dict(distill={"teachers": ["conv", "inv"], "temperature": {"conv": 2}}, grid={})
        )


def test_not_yaml_and_not_a_mapping(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(StudyError, match="not valid YAML"):
        load_study(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(StudyError, match="a study file is a mapping"):
        load_study(bad)


def test_shipped_studies_are_valid():
    from pathlib import Path

    for path in sorted(Path("studies").glob("*.yaml")):
        assert load_study(path).configs, path


def test_hard_distillation_ignores_temperature():
    study = study_from_dict(
        tiny_dict(grid={"distill.temperature": [1.0, 4.0], "distill.loss": ["soft", "hard"]})
    )
    losses = sorted(c.config.distill.loss for c in study.configs)
    assert losses == ["hard", "soft", "soft"]


def test_rednet_width_that_cannot_be_built_is_a_study_error():
    bad = tiny_dict()
    bad["teachers"]["inv"]["width"] = 24
    with pytest.raises(
        StudyError, match=r"teachers\.inv\.width: 24 gives involutions .* use 8, 16"
    ):
        study_from_dict(bad)
    for width in (8, 16, 32, 64):
        assert rednet_width_problem(width) is None


def test_one_teachers_shared_token_is_its_own_token():
    study = study_from_dict(
        tiny_dict(
            grid={
                "distill.teachers": [["conv"], ["conv", "inv"]],
                "student.tokens": ["per_teacher", "shared"],
            }
        )
    )
    modes = sorted((len(c.config.distill.teachers), c.config.student.tokens) for c in study.configs)
    assert modes == [(1, "per_teacher"), (2, "per_teacher"), (2, "shared")]


def test_labels_use_the_shortest_unique_path_tails():
    from harness.study import factor_label

    label = factor_label(
        {
            "distill.temperature.conv": 3.14159,
            "distill.weights.conv": 1.0,
            "distill.teachers": ["conv", "inv"],
            "cache.enabled": False,
        }
    )
    assert label == "temperature.conv=3.142, weights.conv=1, teachers=conv+inv, enabled=False"


def test_labels_name_the_configuration_as_it_runs():
    # Factors that canonicalisation made moot leave the label: the plain ViT has no tokens
    # and no temperature, hard KD no temperature.
    study = study_from_dict(
        tiny_dict(
            grid={
                "distill.teachers": [[], ["conv"]],
                "student.tokens": ["shared", "per_teacher"],
                "distill.temperature": [2.0],
            }
        )
    )
    assert [c.label for c in study.configs] == [
        "teachers=none",
        "teachers=conv, temperature=2",  # one teacher: shared and per-teacher are one token
    ]
    hard = study_from_dict(
        tiny_dict(
            distill={"teachers": ["conv"], "loss": "hard"}, grid={"distill.temperature": [4.0]}
        )
    )
    assert hard.configs[0].label == "base"


def test_online_distillation_ignores_the_cache_format():
    # Cache off: the dtype and top-k of a cache that is never read cannot matter.
    study = study_from_dict(
        tiny_dict(grid={"cache.enabled": [True, False], "cache.dtype": ["float16", "float32"]})
    )
    formats = [(c.config.cache.enabled, c.config.cache.dtype) for c in study.configs]
    assert formats == [(True, "float16"), (True, "float32"), (False, "float16")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfen\x00a\x00m\x00e\x00", "not UTF-8 text (byte 0xff at offset 0)"),  # UTF-16
        ("name: caf\xe9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 9)"),
        (bytes(range(256)), "not UTF-8 text"),
        (b"name: a\nseeds: [0]\nname: b\n", "line 3: key 'name' is given twice"),
    ],
)
def test_unreadable_study_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(StudyError) as caught:
        load_study(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ",".join([f"*{previous}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nname: bomb\n")
    with pytest.raises(StudyError) as caught:
        load_study(path)
    assert "expands to more than 100,000 values" in str(caught.value)
    assert len(str(caught.value)) < 300


def test_errors_quote_at_most_80_characters_of_a_value(tmp_path):
    path = write_study(tmp_path, tiny_dict(dataset={"name": "x" * 5000}))
    with pytest.raises(StudyError) as caught:
        load_study(path)
    assert "unknown dataset 'xxx" in str(caught.value) and len(str(caught.value)) < 400


def test_overrides_are_validated_like_the_file_and_name_a_study_of_their_own(tmp_path):
    from harness.study import load_study
    from tests.helpers import tiny_dict, write_study

    path = write_study(tmp_path, tiny_dict())
    plain = load_study(path)
    # A value that makes configurations the file does not declare: a study of its own,
    # the same name for the same overrides (so a rerun resumes it), the overrides recorded.
    shorter = load_study(path, overrides=["train.epochs=1"])
    assert shorter.name.startswith("tiny-") and shorter.file.train.epochs == 1
    assert load_study(path, overrides=["train.epochs=1"]).name == shorter.name
    assert shorter.overrides == ("train.epochs=1",)
    assert not {p.config_hash for p in shorter.configs} & {p.config_hash for p in plain.configs}
    # Values that only pick among the file's configurations or add seeds keep the name.
    fewer = load_study(path, overrides=["grid.distill.teachers=[[], [conv]]", "seeds=[0, 1, 2]"])
    assert fewer.name == "tiny" and len(fewer.configs) == 2 and fewer.seeds == (0, 1, 2)
    assert load_study(path, overrides=["train.epochs=1", "name=quick"]).name == "quick"
    # Errors name the override's field and what is allowed, as for the file.
    with pytest.raises(StudyError, match=r"train\.epoch: unknown key; allowed keys here: epochs"):
        load_study(path, overrides=["train.epoch=1"])
    with pytest.raises(StudyError, match=r"train\.epochs: Input should be greater than or equal"):
        load_study(path, overrides=["train.epochs=0"])
    with pytest.raises(StudyError, match=r"write path=value"):
        load_study(path, overrides=["train.epochs"])
    with pytest.raises(StudyError, match=r"grid and search: a study has one of them"):
        load_study(
            path,
            overrides=["search.space.train.lr={type: float, low: 0.001, high: 0.01}"],
        )


def test_hard_loss_keeps_its_temperature_only_where_a_shared_mixture_uses_it():
    from tests.helpers import tiny_dict

    def temperature(tokens: str) -> object:
        data = tiny_dict(
            grid={},
            student={**tiny_dict()["student"], "tokens": tokens},
            distill={"teachers": ["conv", "inv"], "loss": "hard", "temperature": 4.0},
        )
        [point] = study_from_dict(data).configs
        return point.config.distill.temperature

    assert temperature("shared") == 4.0
    assert temperature("per_teacher") == 1.0


def test_teachers_to_train_lists_an_instance_per_seed_when_the_seed_scopes_teachers():
    # tiny_dict: grid over {plain, conv, conv+inv}, seeds [0, 1].
    fixed = study_from_dict(tiny_dict())
    assert [(name, t.seed) for name, t, _ in fixed.teachers_to_train()] == [
        ("conv", 0),
        ("inv", 0),
    ]
    scoped = study_from_dict(tiny_dict(seed_scope=["student", "teacher"]))
    instances = [(name, t.seed) for name, t, _ in scoped.teachers_to_train()]
    assert instances == [("conv", 0), ("conv", 1), ("inv", 0), ("inv", 1)]


def test_teachers_to_train_lists_one_per_training_subset():
    """A teacher learns from its configuration's training subset: a grid over the data
    fraction, with each seed's own subset, trains one teacher per fraction and seed."""
    data = tiny_dict(
        seeds=[0, 1],
        grid={"distill.teachers": [["conv"]], "dataset.train_fraction": [0.5, 1.0]},
        seed_scope=["student", "subset"],
    )
    listed = study_from_dict(data).teachers_to_train()
    subsets = sorted((d.train_fraction, d.subset_seed) for _, _, d in listed)
    assert subsets == [(0.5, 0), (0.5, 1), (1.0, 0), (1.0, 1)]


def test_include_adds_a_configuration_beside_the_grid_crossing():
    # The control the claims need: the conv student with its teacher's weight 0, predicting
    # from its class head; not a crossing of the grid, so without running the others.
    control = {
        "distill.teachers": ["conv"],
        "distill.weights": {"conv": 0},
        "student.inference": "cls",
    }
    study = study_from_dict(
        tiny_dict(
            include=[control, {"distill.teachers": ["conv"]}],  # the second is in the grid
            contrasts=[
                {
                    "name": "kd_vs_none",
                    "treatment": {"distill.teachers": ["conv"]},
                    "control": control,
                }
            ],
        )
    )
    assert len(study.configs) == 3 + 1
    included = study.configs[-1]
    assert included.config.distill.teacher_weight("conv") == 0
    assert included.config.student.inference == "cls"
    assert included.label == "teachers=conv, weights={conv:0}, inference=cls"
    assert study.configs[1].label == "teachers=conv"  # grid labels keep their names
    assert study.contrasts[0].control is included
    assert study.factor_values == {
        "distill.teachers": [[], ["conv"], ["conv", "inv"]],
        "distill.weights": [{"conv": 0}],
        "student.inference": ["cls"],
    }


def test_include_is_refused_beside_a_search():
    search = {"space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2}}}
    with pytest.raises(StudyError, match="include: a search samples its configurations"):
        study_from_dict(tiny_dict(grid={}, search=search, include=[{"student.inference": "cls"}]))


@pytest.mark.parametrize("name", ["cls", "labels", "combined"])
def test_a_teacher_named_like_a_libkd_metric_is_refused_with_the_list(tmp_path, name):
    """A teacher `cls` stored its head under `val/top1_cls` (the student's class head) and
    took the `cls` weight; `labels` took the place of the labels in `diag/agree/*`."""
    data = tiny_dict(grid={})
    data["teachers"][name] = data["teachers"].pop("conv")
    data["distill"]["teachers"] = [name, "inv"]
    with pytest.raises(StudyError, match=rf"teachers\.{name}: .*reserved .*cls, combined, labels"):
        load_study(write_study(tmp_path, data))


def test_cache_dir_is_not_part_of_the_configuration(tmp_path):
    """`cache: {dir: ...}` alone changed the hash (an empty `cache` key was left in it)."""
    plain = study_from_dict(tiny_dict(cache={"enabled": False}))
    placed = study_from_dict(tiny_dict(cache={"enabled": False, "dir": str(tmp_path)}))
    assert [p.config_hash for p in plain.configs] == [p.config_hash for p in placed.configs]
    base = tiny_dict()
    del base["cache"]
    moved = tiny_dict(cache={"dir": str(tmp_path)})
    assert [p.config_hash for p in study_from_dict(base).configs] == [
        p.config_hash for p in study_from_dict(moved).configs
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seeds": [2**63]}, r"seeds\[0\]: Input should be less than or equal to 2147483647"),
        ({"seeds": [-1]}, r"seeds\[0\]: Input should be greater than or equal to 0"),
        ({"name": "a" * 300}, "name: String should have at most 100 characters"),
    ],
)
def test_seeds_and_names_the_database_and_files_cannot_hold_are_refused(changes, message):
    """A seed past int64 passed and failed every trial; a 300-character name ran the whole
    study, then could not name its dashboard file."""
    with pytest.raises(StudyError, match=message):
        study_from_dict(tiny_dict(**changes))
