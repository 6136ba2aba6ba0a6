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
from harness.store import RunIdentity, Store
from harness.study import study_from_dict
from tests.helpers import record_run, tiny_dict

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(os.environ.get("LIBKD_TEST_ARTIFACTS", "results/test-artifacts"))


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("LIBKD_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed but LIBKD_REQUIRE_BROWSER is set")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return path


@pytest.mark.e2e
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
        forest = page.eval_on_selector(
            "#forest",
            "e => [e.querySelectorAll('.point').length, e.querySelectorAll('.errorbar').length,"
            " Array.from(e.querySelectorAll('.ytick text')).map(t => t.textContent)]",
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        browser.close()
    # The forest plot is the first figure: one row per contrast (each configuration against
    # the plain ViT, paired over 2 seeds), each with a point and its whiskers.
    assert figures[0][0] == "forest"
    points, whiskers, rows = forest
    assert points == whiskers == len(rows) == len(study.configs) - 1
    # Each row's label carries its verdict, not only its hover text.
    assert all(" vs teachers=none" in row and " (n=2): " in row for row in rows), rows
    verdicts = {row.split(" (n=2): ")[1] for row in rows}
    assert verdicts <= {"helps", "hurts", "no difference shown"}, rows
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
        "forest",
    }
    assert expected <= ids, expected - ids
    for fig_id, svgs, marks in figures:
        assert svgs >= 1 and marks >= 1, (fig_id, svgs, marks)


EVIL = "a\"),(document['title']='PWNED6'),(\"</script><script>document.title='PWNED7'</script>"


def _evil_study(url: str) -> None:
    """Two runs whose label, factor, head name and error carry script: a store accepts any
    strings, so the dashboard must escape them wherever they land."""
    store = Store(url)
    for seed in (0, 1):
        record_run(
            store,
            RunIdentity(
                study="evil",
                trial_number=seed,
                config_hash="e" * 64,
                seed=seed,
                label=f"teachers={EVIL}",
                factors={"distill.teachers": [EVIL]},
            ),
            config={"distill": {"teachers": [EVIL]}},
            metrics={"val/top1": 0.5, f"diag/agree/combined/{EVIL}": 0.5},
            epochs=[{"val/top1": 0.5, f"val/top1_{EVIL}": 0.4}] * 2,
            environment={"torch": EVIL},
        )


@pytest.mark.e2e
def test_script_in_any_stored_name_never_runs(tmp_path, storage_url):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = _chromium()
    _evil_study(storage_url)
    page_path = write_dashboard(Store(storage_url), "evil", out=tmp_path / "evil.html")
    errors = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.resolve().as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length > 0")
        title = page.title()
        plots = page.eval_on_selector_all(".js-plotly-plot", "els => els.length")
        browser.close()
    assert title == "libkd: evil" and errors == []
    assert plots >= 3  # the figures that carry the names were drawn
