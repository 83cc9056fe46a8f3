"""Wall-time limits of tasks and trials inside a worker (one implementation for all).

Two timers guard a limited block:

* SIGALRM (main thread only): raises :class:`TaskTimeout` between two bytecodes,
  and also interrupts a sleeping or waiting objective at once;
* a watchdog thread (one per process): if the block is still running some time
  after its deadline (at once in other threads, where there is no SIGALRM; after
  :data:`WATCHDOG_GRACE` s in the main thread, where SIGALRM should have fired),
  it raises TaskTimeout in the block's thread as an asynchronous exception
  (``PyThreadState_SetAsyncExc``), which no signal handler can intercept.

An objective that replaces the SIGALRM handler or cancels the timer therefore
cannot hang past its limit unnoticed: a block that ends after such tampering
raises :class:`TimeLimitTampered` (a failed task, never a silent success), and a
Python loop that never ends is stopped by the watchdog.  Code that never returns
to the interpreter (a C loop, one long C-level sleep) is interrupted by neither:
run such objectives with process isolation.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator

#: seconds past the deadline at which the watchdog steps in for a main-thread block
WATCHDOG_GRACE = 1.0


class TaskTimeout(BaseException):
    """Raised in a task or trial that ran out of time.  A BaseException, like
    KeyboardInterrupt, so that `except Exception` in objectives or optimizers cannot
    swallow it."""


class TimeLimitTampered(RuntimeError):
    """The objective replaced the SIGALRM handler or cancelled its timer: the time
    limit could not be enforced, so the task fails."""


class _Block:
    __slots__ = ("thread", "deadline", "fired")

    def __init__(self, thread: int, deadline: float):
        self.thread, self.deadline, self.fired = thread, deadline, False


class _Watchdog:
    """One daemon thread that raises TaskTimeout in blocks still running past their time."""

    def __init__(self):
        self.cond = threading.Condition()
        self.blocks: list[_Block] = []
        self.wake_at = float("inf")
        self.thread: threading.Thread | None = None

    def add(self, block: _Block) -> None:
        with self.cond:
            self.blocks.append(block)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="hpcopt-timelimit",
                                               daemon=True)
                self.thread.start()
            if block.deadline < self.wake_at:   # else the thread wakes up early enough
                self.cond.notify()

    def remove(self, block: _Block) -> None:
        """Forget `block`; clear its exception if it was raised but not yet delivered."""
        with self.cond:
            if block in self.blocks:
                self.blocks.remove(block)
            if block.fired:
                _set_async_exc(block.thread, None)

    def _loop(self) -> None:
        with self.cond:
            while True:
                now = time.monotonic()
                for block in self.blocks:
                    if not block.fired and block.deadline <= now:
                        block.fired = True
                        _set_async_exc(block.thread, TaskTimeout)
                pending = [b.deadline for b in self.blocks if not b.fired]
                self.wake_at = min(pending, default=float("inf"))
                self.cond.wait(None if not pending else max(self.wake_at - now, 0.0))


_WATCHDOG = _Watchdog()


def _set_async_exc(thread_id: int, exc_type) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc_type) if exc_type else None)


def _retrying(step) -> bool:
    """Run `step()` to its end even if a TaskTimeout lands in it; True if one landed."""
    landed = False
    while True:
        try:
            step()
            return landed
        except TaskTimeout:
            landed = True


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise TaskTimeout in the block after `seconds` of wall time (no limit if None/0).

    Raises TimeLimitTampered at the end of a block during which the SIGALRM handler
    was replaced or the timer cancelled (main thread).  Limits nest (the inner one
    restores the outer one's timer)."""
    if not seconds:
        yield
        return
    seconds = float(seconds)
    message = f"exceeded its time limit of {seconds:g} s"
    main = threading.current_thread() is threading.main_thread()
    start = time.monotonic()
    block = _Block(threading.get_ident(), start + seconds + (WATCHDOG_GRACE if main else 0.0))

    def expired(signum, frame):
        raise TaskTimeout(message)

    previous, outer_timer = None, 0.0
    if main:
        previous = signal.signal(signal.SIGALRM, expired)
        outer_timer = signal.setitimer(signal.ITIMER_REAL, seconds)[0]
    _WATCHDOG.add(block)
    state: dict = {}

    def disarm() -> None:       # each step once, even if a TaskTimeout lands in between
        if main:
            if "timer" not in state:
                state["timer"] = signal.setitimer(signal.ITIMER_REAL, 0)[0]
            if "handler" not in state:
                state["handler"] = signal.getsignal(signal.SIGALRM)
            if "restored" not in state:
                signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)
                if outer_timer > 0:       # an enclosing limit: its timer runs on
                    elapsed = time.monotonic() - start
                    signal.setitimer(signal.ITIMER_REAL, max(outer_timer - elapsed, 1e-6))
                state["restored"] = True
        _WATCHDOG.remove(block)

    try:
        yield
    except TaskTimeout as exc:
        _retrying(disarm)
        if not exc.args:    # the watchdog's (an exception type cannot carry a message)
            raise TaskTimeout(message) from None
        raise
    except BaseException:
        _retrying(disarm)
        raise
    landed = _retrying(disarm)
    if landed or block.fired or time.monotonic() - start >= seconds:
        raise TaskTimeout(message)          # the deadline passed (and the alarm was eaten)
    if main and state["handler"] is not expired:
        raise TimeLimitTampered(_tampered("replaced the SIGALRM handler", seconds))
    if main and state["timer"] == 0:
        raise TimeLimitTampered(_tampered("cancelled the SIGALRM timer", seconds))


def _tampered(what: str, seconds: float) -> str:
    return (f"the objective {what}, so its time limit of {seconds:g} s could not be "
            f"enforced; run it with [run] isolation = \"process\"")
