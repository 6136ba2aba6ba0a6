"""`cache prune` never rewrites history and never deletes what a running trial holds."""

from __future__ import annotations

import shutil
import sqlite3

from typer.testing import CliRunner

from harness._atomic import use_lock
from harness.cache import list_caches, prune_candidates, prune_entries
from harness.cli import app
from harness.store import Store


def _copy(finished_study, tmp_path):
    db = tmp_path / "libkd.db"
    source = sqlite3.connect(str(finished_study["storage"]).removeprefix("sqlite:///"))
    with sqlite3.connect(db) as copy:
        source.backup(copy)  # with what its WAL file holds
    source.close()
    shutil.copytree(finished_study["cache"], tmp_path / "cache")
    return f"sqlite:///{db}", tmp_path / "cache"


def test_pruning_by_date_keeps_every_run_s_links_and_one_off_costs(finished_study, tmp_path):
    url, cache = _copy(finished_study, tmp_path)
    store = Store(url)
    costs, uses = store.one_off_costs("tiny"), store.artifact_use_counts()
    assert any(bucket["cache"] > 0 for bucket in costs.values())
    done = CliRunner().invoke(
        app,
        [
            "cache",
            "prune",
            "--older-than",
            "2999-01-01",
            "--yes",
            "--cache-dir",
            str(cache),
            "--storage",
            url,
        ],
    )
    assert done.exit_code == 0 and "deleted 1 entries" in done.output, done.output
    assert list_caches(cache) == []
    assert store.one_off_costs("tiny") == costs  # was: every cache cost set to 0
    assert store.artifact_use_counts() == uses  # was: every run's cache links deleted


def test_an_entry_a_running_trial_holds_is_kept(finished_study, tmp_path):
    """The window the finding hit: an entry written but not yet recorded as used looks unused;
    the trial holds it from finding or building it until its logits are loaded."""
    url, cache = _copy(finished_study, tmp_path)
    [entry] = list_caches(cache)
    victims = prune_candidates(cache, Store(url), older_than="2999-01-01")
    with use_lock(entry.path.parent, entry.key):
        pruned = prune_entries(victims)
    assert (pruned.deleted, pruned.in_use) == (0, 1) and entry.path.is_dir()
    pruned = prune_entries(victims)
    assert (pruned.deleted, pruned.in_use) == (1, 0) and not entry.path.exists()
