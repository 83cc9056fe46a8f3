"""Process isolation: evaluate tasks in a child process that may crash or hang.

`[run] isolation = "process"` gives each worker rank a child Python process
(`python -m hpcopt.sandbox_child`, the child side) that rebuilds the campaign's
evaluator from the config and evaluates one task at a time.  The worker talks to it over pipes
with one JSON object per line (no pickle).  A child that segfaults, calls
os._exit or exceeds the task's time limit is killed and replaced; the task is
recorded as failed (or timed out) and the campaign goes on.  The MPI rank
itself never runs user code, so nothing the objective does can take the job
down.

Protocol (parent -> child): {"task_id", "attempt", "payload", "nonce"}; (child ->
parent): {"report": [step, value], "nonce"} (answered by {"stop": bool}) any
number of times, then {"status", "values", "message", "nonce"}.  The nonce is
new for every task and a line without it is ignored, and the child keeps the
protocol on private descriptors: its own stdout and stdin become stderr and
/dev/null (so what the objective prints never reaches the pipe), programs it
starts do not inherit the pipe (close-on-exec), and a child it forks gets
/dev/null in its place and leaves at once if it comes back into the loop.  So
nothing but the evaluator's own answer can become a task's value.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import select
import signal
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

from .farm import Outcome, Task
from .store import schema

STARTUP_TIMEOUT = 300.0   # importing numpy/scipy/numba and building the problem

log = logging.getLogger("hpcopt")


class SandboxEvaluator:
    """Worker side: an Evaluator that forwards each task to a child process."""

    def __init__(self, spec: dict, *, inputs: Callable[[Task], dict] | None = None,
                 timeout: float | None = None):
        self.spec = spec
        self.inputs_fn = inputs
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None

    def inputs(self, task: Task) -> dict:
        return self.inputs_fn(task) if self.inputs_fn else {}

    def _start(self) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "hpcopt.sandbox_child"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, bufsize=1,
                                env=_child_env())
        nonce = secrets.token_hex(8)
        proc.stdin.write(json.dumps({**self.spec, "nonce": nonce}) + "\n")
        proc.stdin.flush()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            line = _read_line(proc, max(deadline - time.monotonic(), 0.0))
            if line is TIMED_OUT or not line:
                code = _kill(proc)
                raise RuntimeError(f"the isolated evaluator process did not start (exit "
                                   f"{code}): {line if line is not TIMED_OUT else 'no answer'!r}")
            msg = _message(line, nonce)
            if msg is not None and msg.get("ready") is True:
                return proc

    def evaluate(self, task: Task, report) -> Outcome:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        proc = self.proc
        nonce = secrets.token_hex(8)
        proc.stdin.write(json.dumps({"task_id": task.task_id, "attempt": task.attempt,
                                     "payload": task.payload, "nonce": nonce},
                                    default=jsonable) + "\n")
        proc.stdin.flush()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            line = _read_line(proc, left)
            if line is TIMED_OUT:
                _kill(proc)
                self.proc = None
                return Outcome(schema.TIMEOUT, {}, f"task exceeded its time limit of "
                                                   f"{self.timeout:g} s (isolated process killed)")
            if not line:                          # end of file: the child died
                self.proc = None
                return Outcome(schema.FAILED, {}, f"evaluator process died: {_describe(proc.wait())}")
            msg = _message(line, nonce)
            if msg is None:
                continue
            if "report" in msg:
                step, value = msg["report"]
                proc.stdin.write(json.dumps({"stop": bool(report(step, value))}) + "\n")
                proc.stdin.flush()
                continue
            values = {k: (np.asarray(v, dtype=float) if isinstance(v, list) else v)
                      for k, v in msg["values"].items()}
            return Outcome(int(msg["status"]), values, msg.get("message", ""))

    def close(self) -> None:
        if self.proc is not None:
            _kill(self.proc)
            self.proc = None


def _child_env() -> dict:
    env = dict(os.environ)
    # the child must not think it is an MPI rank (it never initialises MPI)
    for key in list(env):
        if key.startswith(("PMI_", "PMIX_", "OMPI_", "MPI_LOCALRANKID", "HYDI_")):
            env.pop(key)
    return env


TIMED_OUT = object()


def _message(line: str, nonce: str) -> dict | None:
    """The child's message on `line`, or None for a line that is not one (no JSON object,
    or not this task's nonce: something else wrote into the pipe)."""
    try:
        msg = json.loads(line)
    except ValueError:
        msg = None
    if not isinstance(msg, dict) or msg.get("nonce") != nonce:
        log.debug(f"isolated evaluator: ignored a line that is not its answer: {line[:200]!r}")
        return None
    return msg


def _read_line(proc: subprocess.Popen, timeout: float | None):
    """One line from the child; "" at end of file (the child died); TIMED_OUT."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return TIMED_OUT
    return proc.stdout.readline()


def _kill(proc: subprocess.Popen) -> int:
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    return proc.wait()


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def jsonable(value: Any):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
