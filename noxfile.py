"""nox sessions. They run in the environment nox itself is installed in
(`pip install -e '.[test]'` first): torch is several GB, so each session building its own
virtualenv would cost minutes. Tools run as `python -m ...` of that environment, so the
sessions work whether or not its bin/ folder is on PATH."""

from __future__ import annotations

import sys

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "typecheck", "tests", "e2e"]


def _run(session: nox.Session, *args: str) -> None:
    """Run a module of this environment, with the session's extra arguments appended."""
    session.run(sys.executable, "-m", *args, *session.posargs, external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """The fast tier: everything that neither trains a model nor starts a process."""
    _run(session, "pytest", "-m", "not e2e")


@nox.session
def e2e(session: nox.Session) -> None:
    """The end-to-end tier: studies trained, workers, PostgreSQL, Chromium, CLI processes."""
    _run(session, "pytest", "-m", "e2e")


@nox.session
def lint(session: nox.Session) -> None:
    _run(session, "ruff", "check", "harness", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over harness/, strict with the pydantic plugin (flags in pyproject.toml)."""
    _run(session, "mypy")


@nox.session
def quickstart(session: nox.Session) -> None:
    """The quickstart study: teacher combinations on the bundled digits."""
    _run(session, "harness.cli", "run", "studies/quickstart.yaml")


@nox.session
def bench(session: nox.Session) -> None:
    """Throughput of no-KD, cached-KD and online-KD students; writes results/bench-cpu.json."""
    _run(session, "harness.cli", "bench", "--out", "results/bench-cpu.json")


@nox.session(name="bench_analysis")
def bench_analysis(session: nox.Session) -> None:
    """Reading 1,000 runs x 50 epochs on SQLite and PostgreSQL: results/bench-analysis.json."""
    session.run(sys.executable, "benchmarks/analysis_at_scale.py", *session.posargs, external=True)


@nox.session(name="bench_queue")
def bench_queue(session: nox.Session) -> None:
    """The runner's bookkeeping per trial at 10, 1,000 and 10,000 queued trials, and two
    `libkd run` of one study racing to queue it: results/bench-queue.json."""
    session.run(
        sys.executable,
        "benchmarks/queue_overhead.py",
        "--out",
        "results/bench-queue.json",
        *session.posargs,
        external=True,
    )


@nox.session(name="bench_resume")
def bench_resume(session: nox.Session) -> None:
    """One write of the resume state of a study's teachers and student (default: the
    data-size study's), as training writes it once a minute."""
    study = session.posargs or ["studies/premise_data_size.yaml"]
    session.run(sys.executable, "benchmarks/resume_state.py", *study, external=True)


@nox.session(name="bench_teacher_inference")
def bench_teacher_inference(session: nox.Session) -> None:
    """A study's teachers inferring (logit cache, top-1) at several batch sizes on one
    thread (default: the data-size study's), and whether the logits depend on the batch."""
    study = session.posargs or ["studies/premise_data_size.yaml"]
    session.run(sys.executable, "benchmarks/teacher_inference.py", *study, external=True)
