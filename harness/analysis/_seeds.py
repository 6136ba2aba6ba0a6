"""Seeds spent where a comparison is still undecided: the precision rule of a seed plan.

A contrast (treatment minus control, paired by seed) is decided when the 95% interval of
its mean paired difference is no wider than +-target. The rule is Stein's two-stage
procedure: every configuration runs seeds 0..n0-1 (the plan's `min`); from those n0 pairs'
std s0 a targeted contrast needs n = ceil((t[0.975, n0-1] * s0 / target)^2) pairs (at least
n0, at most the plan's `max`), and both of its configurations get seeds up to n - 1 in one
further round. Its interval is then mean(n pairs) +- t[0.975, n0-1] * s0 / sqrt(n): no wider
than the target (unless capped at `max`), with exact 95% coverage, because the mean is
independent of s0, the only thing the decision read.

The plan aims at one metric (`target.metric`): validation top-1, or the test top-1 the
contrasts report. Either way the rule reads only the first stage's spread, so the number of
seeds is independent of the metric's mean and the test split chooses nothing.

Why not "add a seed until the usual t interval is narrow enough": that rule stops when the
sample std happens to be small, and its intervals cover the truth only 0.89-0.94 of the time
(measured by `simulate_precision(rule="sequential")`). Both rules read the interval's width
only, never the estimate's sign or size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from harness.analysis._inference import ALPHA, halfwidth, interval, sample_std
from harness.analysis._student_t import t_ppf
from harness.metrics import VAL_TOP1
from harness.status import RunStatus
from harness.store import ContrastRow, Store, TrendRow

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Leg:
    """One paired comparison of an aim: treatment minus control, at `x` on a trend's axis
    (the factor's value or its log; 0 for a contrast, which has one leg)."""

    x: float
    treatment: str  # configuration hash
    control: str


@dataclass(frozen=True)
class Aim:
    """A targeted contrast or trend as the rule sees it: a per-seed value (a contrast's
    paired difference, a trend's slope over its legs) whose interval is to reach `target`."""

    name: str
    legs: tuple[Leg, ...]
    target: float  # the half-width to reach
    metric: str  # what the half-width is on
    min_seeds: int  # the first stage: n0
    max_seeds: int

    @classmethod
    def contrast(
        cls, name: str, treatment: str, control: str, target: float, metric: str, lo: int, hi: int
    ) -> Aim:
        return cls(name, (Leg(0.0, treatment, control),), target, metric, lo, hi)

    @property
    def configs(self) -> tuple[str, ...]:
        """Every configuration the aim compares."""
        return tuple(dict.fromkeys(h for leg in self.legs for h in (leg.treatment, leg.control)))

    def per_seed(
        self, values: Mapping[str, Mapping[int, float]], seeds: Iterable[int]
    ) -> list[float]:
        return per_seed_values(self.legs, values, seeds)


def per_seed_values(
    legs: tuple[Leg, ...], values: Mapping[str, Mapping[int, float]], seeds: Iterable[int]
) -> list[float]:
    """A contrast's paired differences, or a trend's per-seed slopes: for each seed with
    every leg, the least-squares slope of its differences against the legs' x."""
    if len(legs) == 1:
        return paired_values(values, legs[0].treatment, legs[0].control, seeds)
    out = []
    for seed in seeds:
        deltas = [
            values[leg.treatment][seed] - values[leg.control][seed]
            for leg in legs
            if seed in values.get(leg.treatment, {}) and seed in values.get(leg.control, {})
        ]
        if len(deltas) == len(legs):
            out.append(slope([leg.x for leg in legs], deltas))
    return out


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of ys against xs."""
    mx, my = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    return math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


FIRST_STAGE = "first stage"  # the state of a contrast whose first-stage seeds are not all in


@dataclass(frozen=True)
class Precision:
    """Where a targeted contrast stands: the pairs it has, the pairs the rule planned (None
    until the first stage is in), the half-width of its interval now, and its state."""

    name: str
    pairs: int
    planned: int | None
    halfwidth: float | None
    target: float
    metric: str
    max_seeds: int
    state: str  # "first stage", "running", "met", "at max"

    @property
    def needs(self) -> range:
        """Seeds the contrast still needs queued (none unless the plan is known)."""
        return range(0) if self.planned is None else range(self.planned)


def paired_values(
    values: Mapping[str, Mapping[int, float]], treatment: str, control: str, seeds: Iterable[int]
) -> list[float]:
    """Treatment minus control over `seeds` that both have a value for."""
    a, b = values.get(treatment, {}), values.get(control, {})
    return [a[s] - b[s] for s in seeds if s in a and s in b]


def planned_pairs(first_stage: list[float], *, target: float, max_seeds: int) -> int:
    """Stein's second-stage size from the first stage's paired differences."""
    n0 = len(first_stage)
    t0 = t_ppf(1 - ALPHA / 2, n0 - 1)
    need = math.ceil((t0 * sample_std(first_stage) / target) ** 2)
    return min(max_seeds, max(n0, need))


def stein_halfwidth(first_stage: list[float], n: int) -> float:
    n0 = len(first_stage)
    return t_ppf(1 - ALPHA / 2, n0 - 1) * sample_std(first_stage) / math.sqrt(n)


def assess(
    aim: Aim,
    *,
    finished: Mapping[str, set[int]],
    values: Mapping[str, Mapping[int, float]],
) -> Precision:
    """The state of one targeted contrast, from the runs finished so far."""
    first = aim.per_seed(values, range(aim.min_seeds))
    if len(first) < aim.min_seeds:
        return Precision(
            aim.name, len(first), None, None, aim.target, aim.metric, aim.max_seeds, FIRST_STAGE
        )
    planned = planned_pairs(first, target=aim.target, max_seeds=aim.max_seeds)
    done = all(s in finished.get(h, ()) for h in aim.configs for s in range(planned))
    pairs = len(aim.per_seed(values, range(planned)))
    width = stein_halfwidth(first, pairs)
    if not done:
        state = "running"
    elif width <= aim.target:
        state = "met"
    else:
        state = "at max"
    return Precision(aim.name, pairs, planned, width, aim.target, aim.metric, aim.max_seeds, state)


def seeds_to_add(
    aims: Iterable[Aim],
    *,
    queued: Mapping[str, set[int]],
    finished: Mapping[str, set[int]],
    values: Mapping[str, Mapping[int, float]],
) -> set[tuple[str, int]]:
    """The (configuration, seed) pairs to queue now: for every targeted contrast whose
    first stage is in, the seeds its plan needs that are not queued yet, on both sides."""
    wanted: set[tuple[str, int]] = set()
    for aim in aims:
        state = assess(aim, finished=finished, values=values)
        for config in aim.configs:
            wanted.update((config, s) for s in state.needs if s not in queued.get(config, ()))
    return wanted


def seed_precision(store: Store, study: str) -> list[Precision]:
    """Where each contrast and trend a seed plan aims at stands (`libkd status`, the
    dashboard)."""
    aims = stored_aims(store, study)
    runs = {metric: finished_runs(store, study, metric) for metric in {a.metric for a in aims}}
    return [assess(aim, finished=runs[aim.metric][0], values=runs[aim.metric][1]) for aim in aims]


def trend_legs(levels: Sequence[Mapping[str, Any]], scale: str) -> tuple[Leg, ...]:
    """A stored trend's levels as legs on its axis (the log of the factor for scale log)."""
    return tuple(
        Leg(
            math.log(float(level["value"])) if scale == "log" else float(level["value"]),
            str(level["treatment_hash"]),
            str(level["control_hash"]),
        )
        for level in levels
    )


def stored_aims(store: Store, study: str) -> list[Aim]:
    """The contrasts and trends the study's seed plan aims at, as recorded when queued."""
    recorded: list[tuple[ContrastRow | TrendRow, tuple[Leg, ...]]] = [
        (c, (Leg(0.0, c.treatment_hash, c.control_hash),)) for c in store.contrasts(study)
    ]
    recorded += [(t, trend_legs(t.levels, t.scale)) for t in store.trends(study)]
    return [
        Aim(row.name, legs, row.halfwidth, row.target_metric, row.min_seeds, row.max_seeds)
        for row, legs in recorded
        if row.halfwidth is not None
        and row.target_metric is not None
        and row.min_seeds is not None
        and row.max_seeds is not None
    ]


def finished_runs(
    store: Store, study: str, metric: str
) -> tuple[dict[str, set[int]], dict[str, dict[int, float]]]:
    """What the rule reads: the seeds each configuration has finished (complete, failed or
    pruned) and the final `metric` of its complete ones."""
    finished: dict[str, set[int]] = {}
    values: dict[str, dict[int, float]] = {}
    for config, seed, status, value in store.final_values(study, metric):
        if status in (RunStatus.COMPLETE, RunStatus.FAILED, RunStatus.PRUNED):
            finished.setdefault(config, set()).add(seed)
        if status == RunStatus.COMPLETE and value is not None:
            values.setdefault(config, {})[seed] = value
    return finished, values


@dataclass(frozen=True)
class SimulationResult:
    """What `simulate_precision` measured over `studies` synthetic studies."""

    rule: str
    studies: int
    contrasts: int  # per study
    coverage: float  # share of reported 95% intervals holding the true effect
    mean_seeds: float  # seeds per configuration under the seed plan
    fixed_seeds: int  # seeds per configuration a fixed design of the same precision needs
    fixed_coverage: float
    met: float  # share of contrasts that reached the target (the rest stopped at max)


def simulate_precision(
    *,
    studies: int = 2000,
    min_seeds: int = 5,
    max_seeds: int = 20,
    target: float = 0.01,
    effects: tuple[float, ...] = (0.0, 0.01, 0.03),
    noise: tuple[float, ...] = (0.004, 0.008, 0.016),
    rule: Literal["two-stage", "sequential"] = "two-stage",
    seed: int = 0,
) -> SimulationResult:
    """Run a seed rule on synthetic studies with known effects.

    Each study has a control and one treatment per (effect, noise) pair: per seed, the
    paired difference is effect + noise * N(0, 1). "two-stage" is the runner's rule
    (`seeds_to_add`, Stein's interval reported); "sequential" adds one seed at a time until
    the usual t interval is narrow enough (shown for contrast). The fixed design of the same
    precision gives every configuration the seeds its noisiest contrast needs for a
    half-width at the target with the true noise known (it cannot know in advance which
    contrast is noisy, and with the noise estimated it would need more).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    arms = list(zip(effects, noise))
    fixed = next(n for n in range(2, 10_000) if halfwidth(max(noise), n) <= target)
    covered = fixed_covered = met = seeds_used = 0
    for _ in range(studies):
        draws = [effect + sd * rng.standard_normal(max(max_seeds, fixed)) for effect, sd in arms]
        used = []
        for (effect, _sd), draw in zip(arms, draws):
            deltas, reached = _one_contrast(draw, rule, min_seeds, max_seeds, target)
            covered += _covers(deltas, effect, min_seeds if rule == "two-stage" else None)
            fixed_covered += _covers(list(draw[:fixed]), effect, None)
            met += reached
            used.append(len(deltas))
        # Each treatment runs its contrast's seeds; the control, its most demanding one's.
        seeds_used += sum(used) + max(used)
    configs = studies * (len(arms) + 1)
    contrasts = studies * len(arms)
    return SimulationResult(
        rule=rule,
        studies=studies,
        contrasts=len(arms),
        coverage=covered / contrasts,
        mean_seeds=seeds_used / configs,
        fixed_seeds=fixed,
        fixed_coverage=fixed_covered / contrasts,
        met=met / contrasts,
    )


def _one_contrast(
    draw: np.ndarray, rule: str, min_seeds: int, max_seeds: int, target: float
) -> tuple[list[float], bool]:
    """The paired differences a contrast ends with under `rule`, and whether it met the target."""

    if rule == "two-stage":
        # The runner's own functions, on a control whose every value is 0.
        aim = Aim.contrast("c", "t", "control", target, VAL_TOP1, min_seeds, max_seeds)
        values = {"t": {s: float(v) for s, v in enumerate(draw)}, "control": {}}
        first = set(range(min_seeds))
        queued: dict[str, set[int]] = {"t": set(first), "control": set(first)}
        while more := seeds_to_add(
            [aim], queued=queued, finished=queued, values=_upto(values, queued)
        ):
            for config, s in more:
                queued[config].add(s)
        state = assess(aim, finished=queued, values=_upto(values, queued))
        planned = state.planned or min_seeds
        return [float(v) for v in draw[:planned]], state.state == "met"
    n = min_seeds
    while n < max_seeds and halfwidth(sample_std(draw[:n].tolist()), n) > target:
        n += 1
    return [float(v) for v in draw[:n]], halfwidth(sample_std(draw[:n].tolist()), n) <= target


def _upto(
    values: dict[str, dict[int, float]], queued: dict[str, set[int]]
) -> dict[str, dict[int, float]]:
    """The values of the queued seeds only (the control's are all 0)."""
    return {
        "t": {s: values["t"][s] for s in queued["t"]},
        "control": {s: 0.0 for s in queued["control"]},
    }


def _covers(deltas: list[float], effect: float, first_stage: int | None) -> bool:
    summary = interval(deltas, first_stage=first_stage)
    return summary.low <= effect <= summary.high
