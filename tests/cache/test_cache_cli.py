from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness._atomic import try_key_lock
from harness.cache import remove_unfinished, unfinished
from harness.cli import app
from harness.runner import run_study
from harness.store import RunIdentity, Store
from harness.study import study_from_dict
from tests.helpers import tiny_dict

runner = CliRunner()


@pytest.mark.e2e
def test_second_study_reuses_teachers_and_caches(storage_url, cache_dir):
    first = study_from_dict(tiny_dict(seeds=[0]))
    run_study(first, store=Store(storage_url), cache_dir=cache_dir)
    other = study_from_dict(
        tiny_dict(
            name="other",
            seeds=[3],
            student={"patch_size": 2, "embed_dim": 16, "depth": 1, "num_heads": 2},
            grid={"distill.teachers": [["conv", "inv"]]},
        )
    )
    run_study(other, store=Store(storage_url), cache_dir=cache_dir)
    [run] = Store(storage_url).runs("other")
    assert run.status == "complete"
    assert run.cache_status == "hit" and run.teacher_seconds == 0.0


@pytest.mark.e2e
def test_cache_ls_verify_prune(storage_url, cache_dir):
    run_study(study_from_dict(tiny_dict(seeds=[0])), store=Store(storage_url), cache_dir=cache_dir)
    common = ["--cache-dir", str(cache_dir)]
    ls = runner.invoke(app, ["cache", "ls", *common, "--storage", storage_url])
    assert ls.exit_code == 0
    rows = [line for line in ls.output.splitlines() if "digits" in line]
    assert len(rows) == 2  # conv and inv, 2 views each
    verify = runner.invoke(app, ["cache", "verify", *common, "--samples", "32"])
    assert verify.exit_code == 0 and verify.output.count(" ok ") == 2
    # Every entry is used by a run: nothing to prune.
    prune = runner.invoke(app, ["cache", "prune", *common, "--storage", storage_url, "--yes"])
    assert "nothing to prune" in prune.output
    # A mistyped --storage is refused, and creates nothing: every entry would look unused.
    fresh = storage_url.replace("libkd.db", "fresh.db")
    typo = runner.invoke(app, ["cache", "prune", *common, "--storage", fresh, "--yes"])
    assert typo.exit_code == 2 and "no database at" in typo.output
    assert not Path(fresh.removeprefix("sqlite:///")).exists()
    assert len(list((cache_dir / "logits").glob("[0-9a-f]*"))) == 2
    # A libkd database without any study is refused too.
    Store(fresh)
    empty = runner.invoke(app, ["cache", "prune", *common, "--storage", fresh, "--yes"])
    assert empty.exit_code == 2 and "holds no libkd study" in empty.output
    # In another libkd database no run uses them; declining the prompt keeps them.
    Store(fresh).start_run(
        RunIdentity(
            study="other",
            trial_number=0,
            config_hash="0" * 64,
            seed=0,
            label="base",
            factors={},
        ),
        config={},
        device="cpu",
        worker="h:1",
        environment={},
    )
    keep = runner.invoke(app, ["cache", "prune", *common, "--storage", fresh], input="n\n")
    assert keep.exit_code == 1 and len(list((cache_dir / "logits").glob("[0-9a-f]*"))) == 2
    gone = runner.invoke(app, ["cache", "prune", *common, "--storage", fresh, "--yes"])
    assert "deleted 2 entries" in gone.output
    assert list((cache_dir / "logits").glob("[0-9a-f]*")) == []


@pytest.mark.e2e
def test_verify_fails_on_a_mismatching_entry(storage_url, fresh_cache_dir):
    cache_dir = fresh_cache_dir  # one entry of each kind: this study's own
    run_study(
        study_from_dict(tiny_dict(seeds=[0], grid={"distill.teachers": [["conv"]]})),
        store=Store(storage_url),
        cache_dir=cache_dir,
    )
    [entry] = list((cache_dir / "logits").glob("[0-9a-f]*"))
    raw = bytearray((entry / "logits.npy").read_bytes())
    raw[-3] ^= 0x40
    (entry / "logits.npy").write_bytes(bytes(raw))
    result = runner.invoke(app, ["cache", "verify", "--cache-dir", str(cache_dir)])
    assert result.exit_code == 1 and "MISMATCH" in result.output


@pytest.mark.e2e
def test_damaged_records_are_named_not_crashed_on(storage_url, fresh_cache_dir):
    cache_dir = fresh_cache_dir  # one entry of each kind: this study's own
    run_study(
        study_from_dict(tiny_dict(seeds=[0], grid={"distill.teachers": [["conv"]]})),
        store=Store(storage_url),
        cache_dir=cache_dir,
    )
    common = ["--cache-dir", str(cache_dir)]
    # A damaged teacher file: verify says so instead of blaming the intact cache.
    [teacher] = list((cache_dir / "teachers").glob("[0-9a-f]*"))
    weights = teacher / "teacher.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    result = runner.invoke(app, ["cache", "verify", *common])
    assert result.exit_code == 1 and "NOT CHECKED" in result.output, result.output
    assert "teacher's weights" in result.output and "MISMATCH" not in result.output
    # A truncated meta.json: ls lists the entry as damaged, verify fails it, neither crashes.
    [entry] = list((cache_dir / "logits").glob("[0-9a-f]*"))
    meta = entry / "meta.json"
    meta.write_text(meta.read_text()[:40])
    ls = runner.invoke(app, ["cache", "ls", *common, "--storage", storage_url])
    assert ls.exit_code == 0 and "meta.json unreadable" in ls.output, ls.output
    verify = runner.invoke(app, ["cache", "verify", *common])
    assert verify.exit_code == 1 and "meta.json unreadable" in verify.output


def _state(path: Path, *, age_days: float = 0.0, folder: bool = False) -> Path:
    """A saved state of unfinished work (a file, or a folder of views), written `age_days`
    ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        path.mkdir()
        (path / "view-0.pt").write_bytes(b"x")
    else:
        path.write_bytes(b"x")
    written = time.time() - age_days * 86400
    os.utime(path, (written, written))
    return path


def test_prune_removes_saved_states_nothing_goes_on_from_and_with_a_date_older_ones(tmp_path):
    """A saved state whose entry is published goes at once; one of unfinished work stays
    (a resumed study goes on from it) unless older than --older-than; one whose key a
    process holds stays whatever its age."""
    root = tmp_path / "cache"
    done = _state(root / "teachers" / ".k1.resume.pt")
    (root / "teachers" / "k1").mkdir()  # its teacher is stored
    fresh = _state(root / "teachers" / ".k2.resume.pt")
    old_student = _state(root / "students" / ".k3.resume.pt", age_days=30)
    old_views = _state(root / "logits" / ".k4.views", age_days=30, folder=True)
    held = _state(root / "students" / ".k5.resume.pt", age_days=30)
    assert sorted(s.key for s in unfinished(root)) == ["k1", "k2", "k3", "k4", "k5"]
    url = f"sqlite:///{tmp_path / 'libkd.db'}"
    identity = RunIdentity(
        study="s", trial_number=0, config_hash="0" * 64, seed=0, label="base", factors={}
    )
    Store(url).start_run(identity, config={}, device="cpu", worker="h:1", environment={})
    listed = runner.invoke(app, ["cache", "ls", "--cache-dir", str(root), "--storage", url])
    assert listed.exit_code == 0, listed.output
    lines = {
        line.split()[1]: line
        for line in listed.output.splitlines()
        if line.startswith("unfinished ")
    }
    assert sorted(lines) == ["k1", "k2", "k3", "k4", "k5"]
    assert "teacher training, 0.00 MiB state" in lines["k2"]
    assert "student training" in lines["k3"]
    assert "logit cache build, 1 view(s) finished" in lines["k4"]
    assert "entry published: cache prune removes it" in lines["k1"]
    assert "prune" not in lines["k2"]
    assert remove_unfinished(root, before=None) == 1
    assert not done.exists() and fresh.exists() and old_student.exists()
    week_ago = (dt.datetime.now() - dt.timedelta(days=7)).timestamp()
    with try_key_lock(root / "students", "k5") as mine:
        assert mine
        assert remove_unfinished(root, before=week_ago) == 2
    assert not old_student.exists() and not old_views.exists()
    assert not (root / "students" / ".k3.lock").exists()  # a run's lock goes with its state
    assert fresh.exists() and held.exists()
    # Through the command: the date is checked before anything is removed.
    common = ["--cache-dir", str(root), "--storage", f"sqlite:///{tmp_path / 'none.db'}"]
    bad = runner.invoke(app, ["cache", "prune", *common, "--older-than", "last week", "--yes"])
    assert bad.exit_code == 2 and "--older-than: 'last week' is not a date" in bad.output
    assert held.exists()
    common = ["--cache-dir", str(root), "--storage", url, "--yes"]
    pruned = runner.invoke(app, ["cache", "prune", *common, "--older-than", "2999-01-01"])
    assert pruned.exit_code == 0, pruned.output
    assert "removed 2 saved state(s) of unfinished trainings or cache builds" in pruned.output
    assert list(unfinished(root)) == []
