"""The contrast statistics against values computed by hand on small inputs."""

from __future__ import annotations

import math

import pytest

from harness.analysis import (
    holm,
    interval,
    minimum_detectable_effect,
    paired_test,
    sign_flip_p,
    simulate_precision,
    tost,
    verdict,
)
from harness.analysis._student_t import t_ppf


def test_holm_by_hand():
    # sorted 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04); monotone, original order.
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    # 0.03*3 = 0.09; then 0.02*2 = 0.04 is raised to the running max 0.09; capped at 1.
    assert holm([0.02, 0.03, 0.5]) == pytest.approx([0.06, 0.06, 0.5])
    assert holm([0.01, 0.04]) == pytest.approx([0.02, 0.04])
    assert holm([0.6, None, 0.9]) == [pytest.approx(1.0), None, pytest.approx(1.0)]


def test_sign_flip_p_exact_by_hand():
    # Three positive differences: of the 8 sign patterns, all-plus and all-minus give a mean
    # as extreme as observed: p = 2/8, which is also the smallest p three pairs allow.
    assert sign_flip_p([1.0, 2.0, 3.0]) == (pytest.approx(0.25), pytest.approx(0.25))
    # [1, 2, -3]: |mean| = 0; every pattern is at least as extreme.
    assert sign_flip_p([1.0, 2.0, -3.0])[0] == pytest.approx(1.0)
    # [3, 1, 1, 1]: |sum| >= 6 only for +3+1+1+1 (6) and mirror, and 3+1+1-1 = 4 < 6: 2/16.
    assert sign_flip_p([3.0, 1.0, 1.0, 1.0]) == (pytest.approx(2 / 16), pytest.approx(2 / 16))
    # [3, 1, 1, -1]: sum 4; patterns with |sum| >= 4: flip only the -1 sign to +(6), the
    # observed (4), 3-1+1+1 (4), 3+1-1+1 (4) and their mirrors: 8/16.
    assert sign_flip_p([3.0, 1.0, 1.0, -1.0])[0] == pytest.approx(8 / 16)


def test_sign_flip_p_beyond_exact_is_a_seeded_monte_carlo():
    deltas = [0.01 * (i % 5 + 1) for i in range(20)]  # all positive: true p = 2 / 2**20
    p, floor = sign_flip_p(deltas)
    assert p == sign_flip_p(deltas)[0]  # deterministic
    assert p == pytest.approx(1 / 100_001)  # only the observed pattern reached
    assert floor == pytest.approx(1 / 100_001)


def test_interval_and_t_p_by_hand():
    deltas = [0.01, 0.02, 0.03]  # mean 0.02, std 0.01
    summary = interval(deltas)
    half = 4.302652729911275 * 0.01 / math.sqrt(3)  # t[0.975, 2]
    assert (summary.mean, summary.df, summary.stein) == (pytest.approx(0.02), 2, False)
    assert (summary.low, summary.high) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    test = paired_test(deltas)
    # t = 0.02 / (0.01 / sqrt 3) = 3.4641; two-sided p on 2 df = 0.0742 (by the t table).
    assert test.p_t == pytest.approx(0.07418, abs=1e-4)
    assert test.method == "paired t" and test.std == pytest.approx(0.01)


def test_stein_interval_uses_the_first_stage_spread():
    deltas = [0.0, 0.02, 0.04, 0.02, 0.02, 0.02]  # first stage [0, .02, .04]: std 0.02
    summary = interval(deltas, first_stage=3)
    half = t_ppf(0.975, 2) * 0.02 / math.sqrt(6)
    assert summary.stein and summary.df == 2
    assert summary.mean == pytest.approx(0.02)
    assert summary.high - summary.mean == pytest.approx(half)
    assert paired_test(deltas, first_stage=3).method == "two-stage (Stein)"


def test_minimum_detectable_effect_by_hand():
    # se 0.01 on 4 df: (t[0.975,4] + t[0.80,4]) * 0.01 = (2.7764 + 0.9410) * 0.01.
    assert minimum_detectable_effect(0.01, 4) == pytest.approx(0.037174, abs=2e-5)
    # Large df tends to the normal (1.96 + 0.8416) * se.
    assert minimum_detectable_effect(1.0, 100_000) == pytest.approx(2.8016, abs=1e-3)


def test_tost_by_hand():
    # mean 0, se 0.001, df 9, margin 0.005: t = 5 each side, p = P(T9 > 5) = 0.000367.
    p, word = tost(0.0, 0.001, 9, 0.005)
    assert p == pytest.approx(0.000367, abs=2e-5) and word == "equivalent"
    # mean 0.02, se 0.002, margin 0.005: the 95% interval [0.0155, 0.0245] is outside.
    assert tost(0.02, 0.002, 9, 0.005)[1] == "not equivalent"
    # mean 0.004, se 0.004: the interval straddles the margin: undecided.
    assert tost(0.004, 0.004, 9, 0.005)[1] == "undecided"


def test_words_follow_the_numbers():
    helps = paired_test([0.05, 0.06, 0.07, 0.05, 0.06])
    assert verdict(helps, 0.001) == "helps"
    assert verdict(helps, 0.2).startswith("no difference shown (could detect ±")
    # A seed plan that still wants pairs gets no verdict yet, however small p is.
    assert verdict(helps, 0.001, planned=8) == "interim (5 of 8 planned pairs)"
    assert verdict(helps, 0.001, planned=5) == "helps"
    same = paired_test([0.001, -0.001, 0.0, 0.001, -0.001], margin=0.01)
    assert same.equivalence == "equivalent"
    assert verdict(same, 0.9) == "equivalent within ±0.01"
    hurts = paired_test([-0.05, -0.06, -0.07])
    assert verdict(hurts, 0.01) == "hurts"
    assert verdict(paired_test([0.1]), None) == "too few pairs"


def test_two_stage_seed_plan_keeps_coverage_and_saves_seeds():
    """The simulation of the runner's rule: 4,000 synthetic studies x 3 contrasts with known
    effects; the reported 95% intervals must cover the truth 93-97% of the time, with fewer
    seeds per configuration than a fixed design of the same precision."""
    result = simulate_precision(studies=4000, min_seeds=5, max_seeds=20, target=0.01)
    assert 0.93 <= result.coverage <= 0.97, result
    assert result.mean_seeds < result.fixed_seeds, result
    assert 0.93 <= result.fixed_coverage <= 0.97, result
    # The naive rule (add a seed until the usual interval is narrow) under-covers here.
    naive = simulate_precision(studies=4000, min_seeds=3, rule="sequential")
    assert naive.coverage < result.coverage
