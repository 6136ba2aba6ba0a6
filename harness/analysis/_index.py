"""The results index: the project's claims, each a contrast or trend of a published study,
with the numbers `libkd publish` wrote for it, never retyped.

`results/claims.yaml` says which comparison states which claim and whether it is current or
superseded (that is a judgement, written by hand); every number comes from the study's
`contrasts.csv` or `trends.csv`, which `publish` writes from the database. The current
claims' table is written between markers into `results/README.md`, the project README and
`docs/results.md`; the superseded claims' table into the history sections that carry its
markers, so a test can regenerate each and compare.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from harness.analysis._report import markdown_text
from harness.analysis._text import interval_text
from harness.errors import LibKDError

CLAIMS_FILE = "claims.yaml"
CONTRASTS_FILE = "contrasts.csv"
TRENDS_FILE = "trends.csv"
STATUSES = ("current", "superseded")
MARKERS = {
    "current": ("<!-- libkd:claims -->", "<!-- /libkd:claims -->"),
    "superseded": ("<!-- libkd:superseded -->", "<!-- /libkd:superseded -->"),
}
"""Where each status's table goes in a document: between its two markers."""
BEGIN, END = MARKERS["current"]


@dataclass(frozen=True)
class Claim:
    """One row of `results/claims.yaml`: what is claimed, by which comparison of which study."""

    claim: str
    study: str
    comparison: str  # a contrast's or a trend's name
    status: str = "current"
    database: str | None = None  # where the study's runs are committed (for re-checks)


def read_claims(results: Path) -> list[Claim]:
    """`results/claims.yaml`, checked: each entry names a published study and comparison."""
    path = results / CLAIMS_FILE
    data = yaml.safe_load(path.read_text()) or {}
    claims = []
    for i, entry in enumerate(data.get("claims", [])):
        where = f"{path}: claims[{i}]"
        try:
            claim = Claim(**entry)
        except TypeError as exc:
            raise LibKDError(
                f"{where}: {exc}; give claim, study, comparison, status, database"
            ) from None
        if claim.status not in STATUSES:
            raise LibKDError(f"{where}.status: {claim.status!r}; give one of {STATUSES}")
        claims.append(claim)
    return claims


def _rows(results: Path, study: str) -> dict[str, dict[str, Any]]:
    """The published comparisons of a study by name (contrasts and trends)."""
    rows: dict[str, dict[str, Any]] = {}
    for name in (CONTRASTS_FILE, TRENDS_FILE):
        path = results / study / name
        if path.is_file():
            for row in pl.read_csv(path).iter_rows(named=True):
                rows[row.get("contrast") or row["trend"]] = row
    return rows


def claims_table(results: Path, *, base: Path, status: str = "current") -> str:
    """The claims of one status (current, or superseded: the history) as a markdown table,
    each with its verdict, effect and 95% interval (unadjusted), Holm-adjusted p (what the
    verdict reads), metric, n and the study's report (linked relative to `base`, the folder
    of the document the table goes in)."""
    claims = read_claims(results)
    lines = [
        "| claim | verdict | effect [95% CI] | Holm p | metric | n | study |",
        "|---|---|---|---|---|---|---|",
    ]
    if status not in STATUSES:
        raise LibKDError(f"claims table status {status!r}: give one of {STATUSES}")
    for claim in (c for c in claims if c.status == status):
        published = _rows(results, claim.study)
        row = published.get(claim.comparison)
        if row is None:
            raise LibKDError(
                f"{results / CLAIMS_FILE}: {claim.study} has no published comparison "
                f"{claim.comparison!r}; run `libkd publish` for it, or fix the name"
            )
        if "slope" in row:
            effect = interval_text(row["slope"], row["slope_ci_low"], row["slope_ci_high"])
            if effect != "-" and row["scale"] == "log":  # '-': no slope yet
                effect += f" per log {row['factor']}"
        else:
            effect = interval_text(row["delta_mean"], row["delta_ci_low"], row["delta_ci_high"])
        verdict = row["verdict"]
        report = os.path.relpath(results / claim.study / "report.md", base)
        link = f"[{claim.study}]({Path(report).as_posix()})"
        holm = "-" if row["p_holm"] is None else f"{row['p_holm']:.3g}"
        cells = [
            markdown_text(claim.claim),
            markdown_text(verdict),
            effect,
            holm,
            row["metric"],
        ]
        lines.append("| " + " | ".join([*cells, str(row["n"]), link]) + " |")
    return "\n".join(lines)


def replace_block(text: str, table: str, *, where: str, status: str = "current") -> str:
    """`text` with the part between the markers of `status` replaced by `table`."""
    begin, end = MARKERS[status]
    if begin not in text or end not in text:
        raise LibKDError(f"{where}: no {begin} ... {end} markers to write the claims between")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{table}\n{end}{tail}"


def claim_blocks(text: str) -> list[str]:
    """The statuses whose markers `text` holds (the tables it carries)."""
    return [status for status, (begin, _) in MARKERS.items() if begin in text]


def update_index(results: Path, *, documents: tuple[Path, ...] = ()) -> list[Path]:
    """Write each claims table into `results/README.md` and each of `documents` that has its
    markers; returns the files written. Nothing happens without `results/claims.yaml`."""
    if not (results / CLAIMS_FILE).is_file():
        return []
    written = []
    for path in (results / "README.md", *documents):
        if not path.is_file() or not claim_blocks(path.read_text()):
            continue
        text = path.read_text()
        new = text
        for status in claim_blocks(text):
            table = claims_table(results, base=path.resolve().parent, status=status)
            new = replace_block(new, table, where=str(path), status=status)
        if new != text:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(new)
            tmp.replace(path)
        written.append(path)
    return written
