"""The docs say what the databases say: the claims table in the README, results/README.md
and docs/results.md is the one the published records give, and each published contrast
recomputes exactly from the study's committed database. Product docs speak of the
product: no issue numbers, no work sessions."""

from __future__ import annotations

import math
import re
from pathlib import Path

import polars as pl
import pytest

from harness.analysis import (
    claims_table,
    contrast_frame,
    load_runs,
    read_claims,
    study_contrasts,
    study_trends,
    trend_frames,
)
from harness.analysis._index import MARKERS, STATUSES, claim_blocks
from harness.store import Store

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
PRODUCT_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


TABLES = [
    (ROOT / "README.md", "current"),
    (RESULTS / "README.md", "current"),
    (RESULTS / "README.md", "superseded"),
    (ROOT / "docs" / "results.md", "current"),
    (ROOT / "docs" / "results.md", "superseded"),
]


@pytest.mark.parametrize(
    ("path", "status"), TABLES, ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v
)
def test_each_claims_table_is_the_generated_one(path, status):
    """The README states each current claim's verdict in one table; the superseded claims
    sit in history sections, each table the one the records give."""
    text = path.read_text()
    begin, end = MARKERS[status]
    block = text.split(begin, 1)[1].split(end, 1)[0].strip()
    assert block == claims_table(RESULTS, base=path.parent, status=status), (
        f"{path.relative_to(ROOT)} holds another {status} claims table than the records "
        "give: run `libkd publish` for the study that changed"
    )
    assert claim_blocks(text) == (["current"] if path == ROOT / "README.md" else list(STATUSES))


def _published(study: str, name: str) -> dict[str, dict]:
    """The published contrasts (or trends) of a study, by name."""
    frame = pl.read_csv(RESULTS / study / f"{name}s.csv")
    return {row[name]: row for row in frame.iter_rows(named=True)}


def _same(published: float | None, again: float | None) -> bool:
    """Equal to the last digit the CSV keeps, or both absent (no pair yet)."""
    missing = [v is None or v != v for v in (published, again)]
    return all(missing) if any(missing) else math.isclose(published, again, abs_tol=1e-12)


@pytest.mark.parametrize("claim", read_claims(RESULTS), ids=lambda c: f"{c.study}/{c.comparison}")
def test_each_claim_recomputes_from_its_committed_database(claim):
    if claim.database is None:
        pytest.skip("no committed database named for this claim")
    store = Store(f"sqlite:///{ROOT / claim.database}", read_only=True)
    runs = load_runs(store, claim.study)
    trends, _ = trend_frames(runs, study_trends(store, claim.study))
    if claim.comparison in (trends["trend"].to_list() if not trends.is_empty() else []):
        kind, fresh, columns = "trend", trends, ("slope", "slope_ci_low", "slope_ci_high")
    else:
        kind, fresh = "contrast", contrast_frame(runs, study_contrasts(store, claim.study, runs))
        columns = ("delta_mean", "delta_ci_low", "delta_ci_high")
    again = {row[kind]: row for row in fresh.iter_rows(named=True)}[claim.comparison]
    published = _published(claim.study, kind)[claim.comparison]
    assert published["n"] == again["n"]
    assert published["verdict"] == again["verdict"]
    for column in (*columns, "p_holm"):
        assert _same(published[column], again[column]), column


@pytest.mark.parametrize("path", PRODUCT_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_product_docs_name_no_issue_or_work_session(path):
    text = path.read_text()
    assert not re.findall(r"(?<![\w&])#\d+\b", text), "an issue number in product docs"
    assert not re.findall(r"\b[Ss]ession \d", text), "a work session in product docs"
    assert not re.findall(r"\bthis stop\b", text), "a work session ('this stop') in product docs"
