"""`libkd status`'s remaining time: the mean duration of the trials that trained, times the
trials left."""

from __future__ import annotations

import datetime as dt

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from harness.analysis._status import study_status
from harness.store import COPIED_ATTR


def test_remaining_time_ignores_trials_that_copied_a_run():
    study = optuna.create_study(direction="maximize")
    start = dt.datetime(2026, 11, 30, 12, 0, 0)
    for seconds, attrs in ((100, {}), (300, {}), (0.1, {COPIED_ATTR: 7}), (0.2, {COPIED_ATTR: 8})):
        trial = create_trial(
            state=TrialState.COMPLETE,
            value=0.5,
            params={"x": 0.5},
            distributions={"x": FloatDistribution(0, 1)},
            user_attrs=attrs,
        )
        trial.datetime_start = start
        trial.datetime_complete = start + dt.timedelta(seconds=seconds)
        study.add_trial(trial)
    study.enqueue_trial({"x": 0.1})
    study.enqueue_trial({"x": 0.2})
    status = study_status(study)
    assert (status.counts["complete"], status.counts["waiting"]) == (4, 2)
    # Two trials left at the mean of the two that trained (200 s), not of all four (100 s).
    assert status.remaining_seconds == pytest.approx(2 * 200.0)
