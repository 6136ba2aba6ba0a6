"""A study's tables for a paper: LaTeX (booktabs) of the configurations and the contrasts,
numbers as the report computes them, text escaped."""

from __future__ import annotations

import polars as pl

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_text(text: str) -> str:
    """Text as LaTeX typesets it literally."""
    return "".join(_SPECIAL.get(char, char) for char in text)


def _interval(mean: float | None, low: float | None, high: float | None, sign: str = "") -> str:
    if mean is None:
        return "--"
    if low is None or high is None:
        return f"{mean:{sign}.4f}"
    return f"{mean:{sign}.4f} [{low:{sign}.4f}, {high:{sign}.4f}]"


def _tabular(columns: list[str], rows: list[list[str]], caption: str) -> str:
    head = " & ".join(columns) + r" \\"
    body = "\n".join(" & ".join(row) + r" \\" for row in rows)
    return "\n".join(
        [
            r"\begin{table}[t]",
            r"\centering",
            r"\begin{tabular}{l" + "r" * (len(columns) - 1) + "}",
            r"\toprule",
            head,
            r"\midrule",
            body,
            r"\bottomrule",
            r"\end{tabular}",
            rf"\caption{{{latex_text(caption)}}}",
            r"\end{table}",
        ]
    )


def latex_tables(report: pl.DataFrame, contrasts: pl.DataFrame, *, metric_words: str) -> str:
    """The configuration table (seeds, test top-1 with its 95% CI, paired delta against the
    baseline) and, if any, the contrast table (n, delta [95% CI] on each contrast's metric,
    Holm p, verdict). Needs `\\usepackage{booktabs}`."""
    rows = []
    for row in report.iter_rows(named=True):
        delta = (
            "baseline"
            if row.get("delta_mean") is None
            else _interval(row["delta_mean"], row["delta_ci_low"], row["delta_ci_high"], "+")
        )
        rows.append(
            [
                latex_text(row["label"]),
                str(row["n"]),
                _interval(row.get("test_mean"), row.get("test_ci_low"), row.get("test_ci_high")),
                delta,
            ]
        )
    parts = [
        _tabular(
            ["configuration", "seeds", "test top-1 [95\\% CI]", "$\\Delta$ [95\\% CI]"],
            rows,
            f"Mean over seeds; delta: {metric_words}, paired by seed against the plain ViT.",
        )
    ]
    if not contrasts.is_empty():
        rows = [
            [
                latex_text(row["contrast"]),
                latex_text(str(row["metric"])),
                str(row["n"]),
                _interval(row["delta_mean"], row["delta_ci_low"], row["delta_ci_high"], "+"),
                "--" if row["p_holm"] is None else f"{row['p_holm']:.3g}",
                latex_text(str(row["verdict"]).split(" (")[0]),
            ]
            for row in contrasts.iter_rows(named=True)
        ]
        parts.append(
            _tabular(
                ["contrast", "metric", "$n$", "$\\Delta$ [95\\% CI]", "Holm $p$", "verdict"],
                rows,
                "Treatment minus control, paired by seed; Holm-adjusted across the contrasts.",
            )
        )
    return "\n\n".join(parts) + "\n"
