"""What an objective running inside a rank (no process isolation) may not do to the job.

* ``os._exit`` inside a task: the launcher (MPICH hydra) would kill every rank at
  once and may report exit status 0 with nothing said and the result file left
  "running".  While the farm runs, ``os._exit`` in the rank's own process raises
  :class:`ExitCalled` instead; the farm turns it into an error naming the rank
  and the task, which ends the job with status 1 (through run_spmd).
* ``fork``: a child that outlives its task keeps the launcher's output pipes open,
  so the job never ends.  A forked child gets the default SIGTERM/SIGUSR1/SIGINT
  actions back (the rank's handlers only set a flag) and the real ``os._exit``; a
  child that returns into the farm's loop leaves at once (:func:`is_forked_copy`);
  and when the farm ends, processes the tasks left running are killed (the rank is
  made a child subreaper, so double-forked daemons are found too).

Guards are installed only in a rank's main thread (not in the threaded
simulations of tests, whose ranks share one process).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger("hpcopt")

PR_SET_CHILD_SUBREAPER = 36     # linux/prctl.h

_real_exit = os._exit
_owner = {"pid": None}
_hook_installed = False


class ExitCalled(BaseException):
    """os._exit was called by a task on a rank (a BaseException: `except Exception`
    in the objective does not swallow it)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def _guarded_exit(code: int = 0) -> None:
    if os.getpid() != _owner["pid"]:
        _real_exit(code)              # a forked child, or after the farm
    raise ExitCalled(code)


def _after_fork_in_child() -> None:
    os._exit = _real_exit
    for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (ValueError, OSError):   # not the main thread of the child
            pass


def is_forked_copy() -> bool:
    """True in a child forked by a task that came back into the farm's code."""
    return _owner["pid"] is not None and os.getpid() != _owner["pid"]


def _set_subreaper(on: bool) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children() -> list:
    import psutil
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def end_leftover_children(before: set[int], rank: int, rounds: int = 20) -> int:
    """Kill the descendants that were not there before the farm; return how many.  Looks
    again after each round: a child may fork once more before its kill lands."""
    import psutil
    killed: list[int] = []
    for _ in range(rounds):
        left = [p for p in _children() if p.pid not in before and p.pid not in killed]
        if not left:
            break
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=5)
        killed += [p.pid for p in left]
    if killed:
        log.warning(f"rank {rank}: killed {len(killed)} process(es) the objective left running "
                    f"(pid {', '.join(map(str, killed))})")
    return len(killed)


@contextmanager
def guarded(rank: int) -> Iterator[None]:
    """Install the guards for the duration of the farm on this rank (main thread only)."""
    global _hook_installed
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if not _hook_installed:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _hook_installed = True
    before = {p.pid for p in _children()}
    reaper = _set_subreaper(True)
    _owner["pid"] = os.getpid()
    os._exit = _guarded_exit
    try:
        yield
    finally:
        os._exit = _real_exit
        _owner["pid"] = None
        end_leftover_children(before, rank)
        if reaper:
            _set_subreaper(False)
