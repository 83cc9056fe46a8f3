"""Wall-time limits of tasks and trials inside a worker (one implementation for all)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class TaskTimeout(BaseException):
    """Raised in a task or trial that ran out of time.  A BaseException, like
    KeyboardInterrupt, so that `except Exception` in objectives or optimizers cannot
    swallow it."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise TaskTimeout in the main thread after `seconds` (SIGALRM; no limit elsewhere).

    Python code is interrupted between bytecodes; code that never returns to the
    interpreter (a C loop) is not: run such objectives with process isolation.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise TaskTimeout(f"exceeded its time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
