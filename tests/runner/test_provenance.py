"""Provenance comes from the installed package, not from wherever the command runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = (
    "import json; from harness.runner._context import provenance; print(json.dumps(provenance()))"
)


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.e2e
def test_libkd_commit_is_the_package_s_and_the_user_s_repository_is_apart(tmp_path):
    user = tmp_path / "my-study-repo"
    user.mkdir()
    _git(user, "init", "-q")
    (user / "study.yaml").write_text("name: mine\n")
    _git(user, "add", "study.yaml")
    _git(user, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-qm", "mine")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", CODE], cwd=user, env=env, capture_output=True, text=True
    )
    found = json.loads(out.stdout)
    assert found["commit"] == _git(ROOT, "rev-parse", "HEAD")
    assert isinstance(found["commit_dirty"], bool)
    assert found["workdir_commit"] == _git(user, "rev-parse", "HEAD") != found["commit"]
    outside = subprocess.run(
        [sys.executable, "-c", CODE], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert "workdir_commit" not in json.loads(outside.stdout)
