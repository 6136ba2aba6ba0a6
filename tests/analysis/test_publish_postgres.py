"""`libkd publish` of a study with teachers, on a real PostgreSQL server (it once failed
there: SELECT DISTINCT over a JSON column)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.runner import run_study
from harness.store import Store
from harness.study import load_study
from harness.testing.postgres import fresh_database
from tests.helpers import tiny_dict, write_study


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.slow
def test_publish_a_study_with_teachers_on_postgres(tmp_path, postgres_url):
    url = fresh_database(postgres_url)
    path = write_study(tmp_path, tiny_dict(seeds=[0, 1], grid={"distill.teachers": [[], ["conv"]]}))
    run_study(load_study(path), store=Store(url), cache_dir=tmp_path / "cache")
    out = tmp_path / "record"
    result = CliRunner().invoke(app, ["publish", str(path), "--storage", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    assert "## Teachers" in text and "| conv | resnet |" in text
    # The teacher's summary row, then one row per instance (one here), not one per run.
    assert text.count("| conv | resnet |") == 2 and "| conv | resnet | 1 |" in text
