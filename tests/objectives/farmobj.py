"""Objectives that misbehave towards the rank running them (importable as `farmobj:NAME`).

FARMOBJ_DIR, when set, is where objectives leave evidence (pids of the children they forked).
"""

import json
import os
import signal
import time
from pathlib import Path


def _quadratic(p):
    return (p["x"] - 0.5) ** 2 + 2.0 * (p.get("y", -0.25) + 0.25) ** 2


def _slow():
    time.sleep(float(os.environ.get("FARMOBJ_SLEEP", "0")))


def _hit(p) -> bool:
    return p["x"] > 1.5


def system_exit_some(p):
    """Raises SystemExit(FARMOBJ_CODE, default 0) for x > 1.5."""
    if _hit(p):
        raise SystemExit(int(os.environ.get("FARMOBJ_CODE", "0")))
    return _quadratic(p)


def interrupt_some(p):
    if _hit(p):
        raise KeyboardInterrupt
    return _quadratic(p)


def os_exit_some(p):
    """Calls os._exit(FARMOBJ_CODE, default 0) for x > 1.5 (a library that 'exits')."""
    _slow()
    if _hit(p):
        os._exit(int(os.environ.get("FARMOBJ_CODE", "0")))
    return _quadratic(p)


def slow(p):
    _slow()
    return _quadratic(p)


def _record_child(pid: int) -> None:
    folder = os.environ.get("FARMOBJ_DIR")
    if folder:
        Path(folder, f"child.{pid}").write_text(json.dumps({"pid": pid, "parent": os.getpid()}))


def fork_daemon_some(p):
    """For x > 1.5 forks a child that sleeps for ten minutes (holding the rank's stdout and
    stderr), and a double-forked grandchild that does the same; returns at once."""
    if _hit(p):
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            grandchild = os.fork()
            if grandchild == 0:
                time.sleep(600)
                os._exit(0)
            _record_child(grandchild)
            os.write(ready_w, b"x")        # recorded: the task may return (no race with the
            time.sleep(600)                # farm's clean-up under load)
            os._exit(0)
        os.close(ready_w)
        os.read(ready_r, 1)
        os.close(ready_r)
        _record_child(pid)
    return _quadratic(p)


def fork_return_some(p):
    """For x > 1.5 forks, and both processes return a value (the child's copy of the rank
    comes back into the task farm's loop)."""
    if _hit(p):
        if os.fork() == 0:
            return -1e9                  # the copy's "result": must never become a row
    return _quadratic(p)


def fork_writes_protocol_some(p):
    """For x > 1.5 forks a child that writes a fake result into what was the protocol pipe
    of an isolated evaluator (fd 1 and any inherited pipe) before the real answer."""
    if _hit(p):
        if os.fork() == 0:
            fake = json.dumps({"status": 1, "values": {"objective": -1e9, "n_eval": 1},
                               "message": ""}) + "\n"
            for fd in range(1, 64):
                try:
                    if fd != 2:
                        os.write(fd, fake.encode())
                except OSError:
                    pass
            os._exit(0)
        time.sleep(0.3)
    return _quadratic(p)


def print_fake_result(p):
    """Prints (to stdout) what an isolated evaluator's answer looks like."""
    print(json.dumps({"status": 1, "values": {"objective": -1e9}, "message": ""}), flush=True)
    os.write(1, b'{"status": 1, "values": {"objective": -1e9}, "message": ""}\n')
    return _quadratic(p)


def alarm_thief_some(p):
    """For x > 1.5 replaces the SIGALRM handler, then loops forever in Python."""
    if _hit(p):
        signal.signal(signal.SIGALRM, lambda s, f: None)
        while True:
            time.sleep(0.01)
    return _quadratic(p)


def alarm_ignorer_some(p):
    """For x > 1.5 ignores SIGALRM and returns (the time limit was silently off)."""
    if _hit(p):
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
    return _quadratic(p)


def alarm_canceller_some(p):
    """For x > 1.5 cancels the interval timer, then sleeps past the time limit in steps."""
    if _hit(p):
        signal.setitimer(signal.ITIMER_REAL, 0)
        for _ in range(100):
            time.sleep(0.02)
    return _quadratic(p)
