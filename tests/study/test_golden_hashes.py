"""The full hashes of every shipped study's configurations, pinned: a changed hash orphans
the results stored under the old one, so a change here must be deliberate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
