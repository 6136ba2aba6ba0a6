"""Two studies' contrasts side by side: the same question asked in two regimes (another
recipe, dataset or schedule), each answered by its own seeds."""

from __future__ import annotations

import polars as pl

from harness.analysis._contrasts import contrast_frame, study_contrasts
from harness.analysis._frames import load_runs
from harness.analysis._text import interval_text
from harness.errors import LibKDError
from harness.status import RunStatus
from harness.store import Store, redact

COMPARE_COLUMNS = ("n", "delta", "verdict", "p_holm")


def _kind(verdict: object) -> str:
    """A verdict without its detail: "no difference shown (could detect ...)" and "no
    difference shown (could detect ...)" with another MDE are the same verdict."""
    return str(verdict).split(" (", 1)[0]


def _side(store: Store, name: str) -> dict[str, dict[str, object]]:
    if not any(run.status == RunStatus.COMPLETE for run in store.runs(name)):
        raise LibKDError(
            f"study {name!r} has no complete runs in {redact(store.url)}; give a study "
            "`libkd status` lists (--second-storage for another database)"
        )
    runs = load_runs(store, name)
    frame = contrast_frame(runs, study_contrasts(store, name, runs))
    return {
        str(row["contrast"]): {
            "metric": row["metric"],
            "n": row["n"],
            "delta": interval_text(row["delta_mean"], row["delta_ci_low"], row["delta_ci_high"]),
            "verdict": row["verdict"],
            "p_holm": None if row["p_holm"] is None else round(float(row["p_holm"]), 4),
        }
        for row in frame.iter_rows(named=True)
    }


def compare_contrasts(first: tuple[Store, str], second: tuple[Store, str]) -> pl.DataFrame:
    """One row per contrast name either study declares, in the first study's order then
    the second's: each study's metric, n, delta [95% CI], verdict and Holm p (Holm within
    its own study), and whether the two verdicts agree. A contrast only one study has
    leaves the other's columns empty."""
    a, b = _side(*first), _side(*second)
    rows = []
    for name in [*a, *(n for n in b if n not in a)]:
        left, right = a.get(name, {}), b.get(name, {})
        row: dict[str, object] = {"contrast": name}
        for tag, side in (("a", left), ("b", right)):
            row[f"{tag}_metric"] = side.get("metric")
            for column in COMPARE_COLUMNS:
                row[f"{tag}_{column}"] = side.get(column)
        both = bool(left) and bool(right)
        row["same_verdict"] = _kind(left["verdict"]) == _kind(right["verdict"]) if both else None
        rows.append(row)
    schema: dict[str, type[pl.DataType]] = {"contrast": pl.String}
    for tag in ("a", "b"):
        schema |= {
            f"{tag}_metric": pl.String,
            f"{tag}_n": pl.Int64,
            f"{tag}_delta": pl.String,
            f"{tag}_verdict": pl.String,
            f"{tag}_p_holm": pl.Float64,
        }
    schema["same_verdict"] = pl.Boolean
    return pl.DataFrame(rows, schema=schema)
