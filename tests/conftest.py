"""Shared fixtures; helpers live in tests/helpers.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import tiny_dict, write_study

# `libkd run` picks its workers itself (--workers auto); the tests that drive it in this
# process (monkeypatched trainers, counted calls) need it in this process, so one worker
# unless a test asks for more (`--workers 2`, `--workers auto`).
os.environ["LIBKD_WORKERS"] = "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start PostgreSQL, Chromium or Slurm belong to the end-to-end tier, whatever
    their own marks say."""
    for item in items:
        if any(item.get_closest_marker(m) for m in ("postgres", "browser", "slurm")):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def tiny_study_file(tmp_path: Path) -> Path:
    return write_study(tmp_path, tiny_dict())


@pytest.fixture
def storage_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'libkd.db'}"


@pytest.fixture(scope="session")
def template_cache(tmp_path_factory) -> Path:
    """The tiny study's teachers (conv, inv) and their logit caches, trained once per
    session: what nearly every tiny-based study needs, whatever else it varies."""
    from harness.runner import run_study
    from harness.store import Store
    from harness.study import study_from_dict

    root = tmp_path_factory.mktemp("template")
    data = tiny_dict(name="template", seeds=[0], grid={"distill.teachers": [["conv", "inv"]]})
    summary = run_study(
        study_from_dict(data),
        store=Store(f"sqlite:///{root / 'db.sqlite'}"),
        cache_dir=root / "cache",
    )
    assert (summary.complete, summary.failed) == (1, 0)
    return root / "cache"


@pytest.fixture
def cache_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A test's own cache folder. For a test that trains (e2e), a copy of the session's
    template: the tiny teachers and caches are found there, not trained again per test."""
    target = tmp_path / "cache"
    if request.node.get_closest_marker("e2e"):
        shutil.copytree(request.getfixturevalue("template_cache"), target)
    return target


@pytest.fixture
def fresh_cache_dir(tmp_path: Path) -> Path:
    """An empty cache folder: for tests of what building teachers and caches does."""
    return tmp_path / "fresh-cache"


@pytest.fixture(scope="session")
def postgres_url():
    """A server for the session; skipped where none can start, failed in CI
    (LIBKD_REQUIRE_POSTGRES), where it must."""
    import shutil

    from harness.testing.postgres import postgres_server

    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        if os.environ.get("LIBKD_REQUIRE_POSTGRES"):
            pytest.fail("initdb/pg_ctl are not on PATH but LIBKD_REQUIRE_POSTGRES is set")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not on PATH")
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def finished_study(tmp_path_factory) -> dict[str, Path | str]:
    """One tiny grid study (plain ViT and conv, 2 seeds) run once per session into its own
    database and cache. The commands that only read (report, status, export, dashboard,
    publish, cache ls/verify) share it; tests must not write to it."""
    from harness.runner import run_study
    from harness.store import Store
    from harness.study import load_study

    root = tmp_path_factory.mktemp("finished")
    path = write_study(root, tiny_dict(seeds=[0, 1], grid={"distill.teachers": [[], ["conv"]]}))
    url = f"sqlite:///{root / 'libkd.db'}"
    summary = run_study(load_study(path), store=Store(url), cache_dir=root / "cache")
    assert (summary.complete, summary.failed) == (4, 0)
    return {"path": path, "storage": url, "cache": root / "cache"}
