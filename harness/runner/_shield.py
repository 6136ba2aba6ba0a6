"""Bookkeeping that an interrupt must not cut in half: SIGINT and SIGTERM are held while it
runs and delivered after it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def shielded() -> Iterator[None]:
    """Run the block to its end whatever signal arrives; a signal that arrived meanwhile is
    then handled as it would have been (Ctrl-C pressed twice re-queues the trial once, and
    the second press still stops the process). Outside the main thread, where Python runs
    no signal handler, the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        arrived.append(signum)

    previous: dict[int, Any] = {sig: signal.signal(sig, hold) for sig in HELD}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(arrived):
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


class Terminated(KeyboardInterrupt):
    """SIGTERM (what schedulers send before they kill: a time limit, scancel, preemption),
    handled as Ctrl-C is: the running trial is re-queued and the process exits cleanly."""


_unanswered: list[int] = []  # SIGTERMs whose Terminated no handler has caught yet


def interrupt_on_sigterm() -> None:
    """From now on SIGTERM raises Terminated. Python drops an exception raised where it
    cannot propagate (a garbage-collection callback, a __del__); the signal is remembered
    until `answered()`, and `raise_if_terminated` raises it again at the next safe point."""

    def terminate(signum: int, _frame: FrameType | None) -> None:
        _unanswered.append(signum)
        raise Terminated()

    signal.signal(signal.SIGTERM, terminate)


def raise_if_terminated() -> None:
    """Raise Terminated if a SIGTERM arrived and its exception was lost (call between steps:
    each epoch, each phase of a trial)."""
    if _unanswered:
        raise Terminated()


def answered() -> None:
    """The interrupt reached a handler (the trial is being re-queued): forget the signal."""
    _unanswered.clear()
