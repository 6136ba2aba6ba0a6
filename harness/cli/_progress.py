"""A run's progress on the terminal: a rich progress bar on a terminal, one plain line per
event in a log (teacher and student epochs at most four times per phase)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.metrics import COST_TOTAL_SECONDS, VAL_TOP1
from harness.status import RunStatus

if TYPE_CHECKING:
    from harness.distill import EpochReport
    from harness.runner import StudyProgress
    from harness.study import TrialSpec

from harness.cli._console import console, duration


def _study_text(study: StudyProgress | None) -> str:
    if study is None:
        return ""
    eta = "ETA -" if study.eta_seconds is None else f"ETA {duration(study.eta_seconds)}"
    return f"study {study.finished}/{study.total} done, {eta}"


class RichProgress:
    """On a terminal: the study's progress with its ETA (every worker's trials, from the
    database) and the current trial's phase (teacher epoch, cache view, student epoch)."""

    def __init__(self) -> None:
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._study: Any = None
        self._task: Any = None
        self._head = ""

    def __enter__(self) -> RichProgress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.__exit__(*exc)

    def trial_started(
        self, spec: TrialSpec, *, number: int, total: int, study: StudyProgress | None = None
    ) -> None:
        if study is not None:
            if self._study is None:
                self._study = self._bar.add_task("", total=study.total)
            self._bar.update(
                self._study,
                completed=study.finished,
                total=study.total,
                description=_study_text(study),
            )
        self._head = f"trial {number}/{total} [bold]{escape(spec.label)}[/] seed {spec.seed}"
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(self._head, total=spec.config.train.epochs)

    def phase(self, spec: TrialSpec, name: str, done: int, total: int) -> None:
        self._bar.update(
            self._task,
            completed=done,
            total=total,
            description=f"{self._head} | {escape(name)} {done}/{total}",
        )

    def epoch_done(self, spec: TrialSpec, report: EpochReport, *, epochs: int) -> None:
        self._bar.update(
            self._task,
            completed=report.epoch + 1,
            total=epochs,
            description=f"{self._head} | student epoch {report.epoch + 1}{_val(report, 3)}",
        )

    def trial_finished(
        self, spec: TrialSpec, *, status: RunStatus, metrics: dict[str, Any]
    ) -> None:
        color = {RunStatus.COMPLETE: "green", RunStatus.FAILED: "red"}.get(status, "yellow")
        line = f"{self._head} [{color}]{status}[/]"
        if VAL_TOP1 in metrics:
            line += f" val top1 {metrics[VAL_TOP1]:.4f} ({metrics[COST_TOTAL_SECONDS]:.1f} s)"
        console.print(line)

    def trial_copied(self, spec: TrialSpec, *, source: int, metrics: dict[str, Any]) -> None:
        console.print(
            f"[bold]{escape(spec.label)}[/] seed {spec.seed}: {_copied_text(source, metrics)}"
        )

    def other_worker(self, line: str) -> None:
        console.print(line, markup=False)


class PlainProgress:
    """Not on a terminal (a log file, CI, nohup): one plain line per event, teacher and
    student epochs at most four times per phase, each line stamped with the study's state."""

    def __init__(self) -> None:
        self._head, self._study = "", ""

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def _say(self, text: str) -> None:
        stamp = f"[{self._study}] " if self._study else ""
        print(f"{stamp}{self._head}: {text}", flush=True)

    def trial_started(
        self, spec: TrialSpec, *, number: int, total: int, study: StudyProgress | None = None
    ) -> None:
        self._study = _study_text(study)
        self._head = f"trial {number}/{total} {spec.label} seed {spec.seed}"
        self._say("started")

    def phase(self, spec: TrialSpec, name: str, done: int, total: int) -> None:
        if _milestone(done, total):
            self._say(f"{name} {done}/{total}")

    def epoch_done(self, spec: TrialSpec, report: EpochReport, *, epochs: int) -> None:
        if _milestone(report.epoch + 1, epochs):
            self._say(f"student epoch {report.epoch + 1}/{epochs}{_val(report, 4)}")

    def trial_finished(
        self, spec: TrialSpec, *, status: RunStatus, metrics: dict[str, Any]
    ) -> None:
        text = str(status)
        if VAL_TOP1 in metrics:
            text += f" val top1 {metrics[VAL_TOP1]:.4f} ({metrics[COST_TOTAL_SECONDS]:.1f} s)"
        self._say(text)

    def trial_copied(self, spec: TrialSpec, *, source: int, metrics: dict[str, Any]) -> None:
        print(f"{spec.label} seed {spec.seed}: {_copied_text(source, metrics)}", flush=True)

    def other_worker(self, line: str) -> None:
        stamp = f"[{self._study}] " if self._study else ""
        print(f"{stamp}{line}", flush=True)


def _copied_text(source: int, metrics: dict[str, Any]) -> str:
    """What a copied trial prints: the run it copies and that run's validation top-1."""
    top1 = metrics[VAL_TOP1]
    return f"copied run {source}, trained by another study here, val top1 {top1:.4f}"


def _val(report: EpochReport, digits: int) -> str:
    """' val top1 0.7512' for an epoch that was validated; nothing for one `eval_every`
    skipped (not 'nan')."""
    top1 = report.metrics.get(VAL_TOP1)
    return "" if top1 is None or math.isnan(top1) else f" val top1 {top1:.{digits}f}"


def _milestone(done: int, total: int) -> bool:
    """The first, last and every quarter of a phase's steps."""
    return done in (1, total) or done % max(1, total // 4) == 0


def run_progress() -> RichProgress | PlainProgress:
    """A live display on a terminal, plain lines anywhere else."""
    return RichProgress() if console.is_terminal else PlainProgress()
