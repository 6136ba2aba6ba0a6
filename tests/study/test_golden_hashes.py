"""The full hashes of every shipped study's configurations, pinned: a changed hash orphans
the results stored under the old one, so a change here must be deliberate.

The one deliberate change so far: the train/validation/test split (validation carved from
the training images, test held out) changed what every configuration trains on, so every
hash changed, by the split key alone: `before_split` pins the hashes before it, and each
is reproduced from today's configuration without that key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from harness.config import TrialConfig
from harness.config._hash import SPLIT_SCHEME
from harness.study import load_study, resolve_point

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = json.loads((Path(__file__).parent / "golden_hashes.json").read_text())


def test_every_shipped_study_is_pinned():
    shipped = sorted(path.name for path in (ROOT / "studies").glob("*.yaml"))
    assert shipped == sorted(GOLDEN["studies"])


@pytest.mark.parametrize("name", sorted(GOLDEN["studies"]))
def test_shipped_study_hashes_are_unchanged(name):
    study = load_study(ROOT / "studies" / name)
    assert [point.config_hash for point in study.configs] == GOLDEN["studies"][name]


@pytest.mark.parametrize("name", sorted(GOLDEN["points"]))
def test_resolved_point_hashes_are_unchanged(name):
    """Points a search (or a grid over token modes, loss kinds, cache formats) resolves."""
    study = load_study(ROOT / "studies" / name)
    for pinned in GOLDEN["points"][name]:
        assert resolve_point(study, pinned["factors"]).config_hash == pinned["hash"], pinned


def _hash_without_split(config: TrialConfig) -> str:
    data = config.model_dump(mode="json", exclude_defaults=True)
    data.get("cache", {}).pop("dir", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(GOLDEN["before_split"]["studies"]))
def test_hashes_changed_by_the_split_scheme_alone(name):
    assert GOLDEN["split_scheme"] == SPLIT_SCHEME
    study = load_study(ROOT / "studies" / name)
    before = [_hash_without_split(point.config) for point in study.configs]
    assert before == GOLDEN["before_split"]["studies"][name]
    for pinned in GOLDEN["before_split"]["points"].get(name, []):
        point = resolve_point(study, pinned["factors"])
        assert _hash_without_split(point.config) == pinned["hash"], pinned
