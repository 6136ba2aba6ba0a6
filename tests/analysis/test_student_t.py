"""The pure-Python Student t against scipy.stats.t (scipy is a test dependency only here)."""

from __future__ import annotations

import pytest
from scipy import stats

from harness.analysis._student_t import incomplete_beta, t_ppf, t_sf


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 19, 49, 199, 1000])
def test_tail_and_quantile_match_scipy(df):
    for t in (-12.0, -3.3, -1.0, -0.1, 0.0, 0.4, 1.0, 2.26, 5.0, 40.0):
        assert t_sf(t, df) == pytest.approx(stats.t.sf(t, df), rel=1e-9, abs=1e-14)
    for p in (0.001, 0.025, 0.3, 0.5, 0.8, 0.975, 0.995, 0.9999):
        assert t_ppf(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=1e-12)


def test_known_values():
    assert t_ppf(0.975, 4) == pytest.approx(2.776445105, abs=1e-9)  # the 5-seed 95% CI
    assert 2 * t_sf(2.0, 10) == pytest.approx(0.0733880, abs=1e-7)
    assert incomplete_beta(2.0, 3.0, 0.4) == pytest.approx(0.5248, abs=1e-12)


def test_quantile_needs_a_probability():
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\)"):
        t_ppf(1.0, 3)
