"""Paired inference for a study's contrasts: the t interval and test, an exact sign-flip
permutation test, Holm's adjustment across contrasts, the minimum detectable effect, an
equivalence test (TOST) and the words a report may use for each.

Every function takes plain numbers (the per-seed paired differences, treatment minus
control), so tests check them against values computed by hand.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.analysis._student_t import t_ppf, t_sf

if TYPE_CHECKING:
    import numpy as np

ALPHA = 0.05
POWER = 0.80
EXACT_FLIPS_UP_TO = 16  # 2**16 sign patterns are enumerated; beyond, a fixed Monte Carlo
MONTE_CARLO_FLIPS = 100_000


def halfwidth(std: float, n: int, *, confidence: float = 1 - ALPHA) -> float:
    """Half the width of the two-sided Student-t interval of a mean of `n` values."""
    return t_ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)


def t_test_p(mean: float, se: float, df: int) -> float:
    """Two-sided t-test of mean 0 with standard error `se` on `df` degrees of freedom (the
    paired t-test on differences: se = std / sqrt(n), df = n - 1)."""
    if se == 0:
        return 0.0 if mean != 0 else 1.0
    return 2 * t_sf(abs(mean) / se, df)


def sign_flip_p(deltas: Sequence[float]) -> tuple[float, float]:
    """(p, smallest attainable p) of the two-sided sign-flip permutation test of a zero
    mean difference: under the null each difference's sign is a fair coin.

    Exact (every one of the 2**n sign patterns) up to EXACT_FLIPS_UP_TO pairs; beyond, a
    Monte Carlo estimate from MONTE_CARLO_FLIPS patterns drawn with a fixed seed, counting
    the observed one (so p >= 1 / (draws + 1)). Distribution-free: it assumes only that
    the differences are symmetric about 0 under the null.
    """
    import numpy as np

    values = np.asarray(deltas, dtype=np.float64)
    n = len(values)
    observed = abs(values.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(values).max(initial=0.0)))
    smallest = 2.0 / 2.0**n
    if n <= EXACT_FLIPS_UP_TO:
        patterns = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        signs = 1.0 - 2.0 * patterns
        means = np.abs(signs @ values) / n
        return float((means >= observed - tolerance).mean()), smallest
    signs = _monte_carlo_signs(n)
    hits = int((np.abs(signs @ values) / n >= observed - tolerance).sum())
    return (hits + 1) / (MONTE_CARLO_FLIPS + 1), max(smallest, 1 / (MONTE_CARLO_FLIPS + 1))


@functools.lru_cache(maxsize=4)
def _monte_carlo_signs(n: int) -> np.ndarray:
    """The Monte Carlo sign patterns for n pairs: drawn once per n from the fixed seed (the
    same draws every call, so a p-value never changes; drawing them took 30 ms a contrast)."""
    import numpy as np

    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=(MONTE_CARLO_FLIPS, n))
    signs.setflags(write=False)
    return signs


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (family-wise error over the given tests); None stays
    None and does not count as a test."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(tested)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def minimum_detectable_effect(
    se: float, df: int, *, alpha: float = ALPHA, power: float = POWER
) -> float:
    """The smallest true mean difference the two-sided t-test at `alpha` detects with
    probability `power`, given the standard error: (t[1-alpha/2, df] + t[power, df]) * se
    (the usual approximation to the noncentral t; se = std / sqrt(n), df = n - 1)."""
    return (t_ppf(1 - alpha / 2, df) + t_ppf(power, df)) * se


def tost(mean: float, se: float, df: int, margin: float) -> tuple[float, str]:
    """Two one-sided t-tests of |true difference| < margin: (p, verdict).

    p is the larger one-sided p (equivalent when p < ALPHA, i.e. the 90% interval lies
    inside +-margin); "not equivalent" when the 95% interval lies wholly outside the band;
    otherwise "undecided" (the data cannot say yet).
    """
    if se == 0:
        inside = abs(mean) < margin
        return (0.0 if inside else 1.0), ("equivalent" if inside else "not equivalent")
    p_lower = t_sf((mean + margin) / se, df)  # H0: difference <= -margin
    p_upper = t_sf((margin - mean) / se, df)  # H0: difference >= +margin
    p = max(p_lower, p_upper)
    half = t_ppf(1 - ALPHA / 2, df) * se
    if p < ALPHA:
        return p, "equivalent"
    if mean - half > margin or mean + half < -margin:
        return p, "not equivalent"
    return p, "undecided"


@dataclass(frozen=True)
class PairedTest:
    """A contrast's paired differences summarised: n, mean, std, 95% t interval, the t-test
    p, the sign-flip p and its floor, the MDE at 80% power and, with a margin, TOST; and the
    method of the interval and t-based tests ("paired t" or "two-stage (Stein)")."""

    n: int
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None
    p_t: float | None
    p_sign_flip: float | None
    p_sign_flip_min: float | None
    mde: float | None
    margin: float | None = None
    p_tost: float | None = None
    equivalence: str | None = None
    method: str = "paired t"
    df: int | None = None


def sample_std(values: Sequence[float]) -> float:
    """The sample standard deviation (n - 1), summed exactly (`math.fsum`): the one spread
    behind every interval, seed plan and power figure."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


@dataclass(frozen=True)
class Interval:
    """The t-based summary of paired differences: mean, standard error, degrees of freedom
    and the 95% interval; `stein` when the first stage's spread gives the error."""

    mean: float
    se: float
    df: int
    low: float
    high: float
    stein: bool


def interval(deltas: Sequence[float], *, first_stage: int | None = None) -> Interval:
    """The 95% interval of the mean of `deltas` (at least 2).

    With `first_stage` (a seed plan's `min`), n was chosen from the first stage's spread, so
    the interval is Stein's two-stage one: the standard error is the first stage's std over
    sqrt(n), on first_stage - 1 degrees of freedom. The mean of all n is independent of that
    std, so the coverage is exact whatever n the rule chose; the usual t interval of all n
    pairs would not be (n depends on the data).
    """
    n = len(deltas)
    mean = math.fsum(deltas) / n
    if first_stage is not None and 2 <= first_stage <= n:
        spread, df, stein = sample_std(deltas[:first_stage]), first_stage - 1, True
    else:
        spread, df, stein = sample_std(deltas), n - 1, False
    se = spread / math.sqrt(n)
    half = t_ppf(1 - ALPHA / 2, df) * se
    return Interval(mean, se, df, mean - half, mean + half, stein)


def paired_test(
    deltas: Sequence[float], *, margin: float | None = None, first_stage: int | None = None
) -> PairedTest:
    """Everything the report says about one contrast, from its per-seed differences; the
    interval and the t-based tests are `interval`'s (Stein's with `first_stage`)."""
    n = len(deltas)
    if n < 2:
        mean = deltas[0] if deltas else math.nan
        return PairedTest(n, mean, None, None, None, None, None, None, None, margin)
    summary = interval(deltas, first_stage=first_stage)
    mean, se, df = summary.mean, summary.se, summary.df
    p_flip, floor = sign_flip_p(deltas)
    p_tost, equivalence = tost(mean, se, df, margin) if margin else (None, None)
    return PairedTest(
        n=n,
        mean=mean,
        std=sample_std(deltas),
        ci_low=summary.low,
        ci_high=summary.high,
        p_t=t_test_p(mean, se, df),
        p_sign_flip=p_flip,
        p_sign_flip_min=floor,
        mde=minimum_detectable_effect(se, df),
        margin=margin,
        p_tost=p_tost,
        equivalence=equivalence,
        method="two-stage (Stein)" if summary.stein else "paired t",
        df=df,
    )


def verdict(
    test: PairedTest,
    p_holm: float | None,
    *,
    planned: int | None = None,
    words: tuple[str, str, str] = ("helps", "hurts", "no difference shown"),
) -> str:
    """The words a report may use, following the numbers: "helps" or "hurts" (Holm-adjusted
    p < ALPHA), "equivalent within +-m" (TOST), otherwise "no difference shown", with the
    effect the study could have detected. While a seed plan still wants `planned` pairs, no
    verdict: "interim" (a verdict read before the planned n would be a peek). `words`: what
    a positive, a negative and an undecided estimate are called (a trend's differ)."""
    if test.n < 2 or p_holm is None:
        return "too few pairs"
    if planned is not None and test.n < planned:
        return f"interim ({test.n} of {planned} planned pairs)"
    if p_holm < ALPHA:
        return words[0] if test.mean > 0 else words[1]
    if test.equivalence == "equivalent" and test.margin is not None:
        return f"equivalent within ±{test.margin:g}"
    detectable = f" (could detect ±{test.mde:.3g} at 80% power)" if test.mde else ""
    return words[2] + detectable
