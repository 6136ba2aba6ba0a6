"""Open a real dashboard in headless Chromium: no console errors, no network requests, every
chart drawn. Marked `browser`; CI installs Debian's chromium and requires this test to run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from harness.dashboard import write_dashboard
from harness.runner import run_study
from harness.store import Store
from harness.study import study_from_dict
from tests.helpers import tiny_dict

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(os.environ.get("LIBKD_TEST_ARTIFACTS", "results/test-artifacts"))


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("LIBKD_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed but LIBKD_REQUIRE_BROWSER is set")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return path


def test_dashboard_opens_offline_and_draws_every_chart(tmp_path, storage_url, cache_dir):
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    # The quickstart study itself, shrunk to seconds, with a temperature factor added so the
    # temperature curves are drawn too.
    quickstart = yaml.safe_load(Path("studies/quickstart.yaml").read_text())
    shrunk = tiny_dict(
        description="<script>alert('x')</script> escaped?",
        grid={**quickstart["grid"], "distill.temperature": [1.0, 4.0]},
        distill=quickstart["distill"],
    )
    study = study_from_dict(shrunk)
    assert len(study.configs) == 1 + 3 * 2
    run_study(study, store=Store(storage_url), cache_dir=cache_dir)
    source = tmp_path / "study.yaml"
    source.write_text("description: <script>alert('x')</script>\n")
    page_path = write_dashboard(
        Store(storage_url), "tiny", out=tmp_path / "d.html", study_file=source
    )
    html = page_path.read_text()
    assert "<script>alert('x')</script>" not in html and "&lt;script&gt;" in html

    errors, requests = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_path.resolve().as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length > 0")
        figures = page.eval_on_selector_all(
            ".figure",
            "els => els.map(e => [e.id, e.querySelectorAll('svg.main-svg').length,"
            " e.querySelectorAll('.trace, .point, path.bar, .bars').length])",
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        browser.close()
    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []
    ids = {fig_id for fig_id, _, _ in figures}
    expected = {
        "factor-distill.teachers",
        "factor-distill.temperature",
        "temperature-distill.temperature",
        "curve-val/top1",
        "curve-val/top1_cls",
        "curve-val/top1_conv",
        "curve-val/top1_inv",
        "pareto",
        "cache",
        "throughput",
        "heads",
        "attention-distance",
    }
    assert expected <= ids, expected - ids
    for fig_id, svgs, marks in figures:
        assert svgs >= 1 and marks >= 1, (fig_id, svgs, marks)
