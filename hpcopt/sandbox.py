"""Process isolation: evaluate tasks in a child process that may crash or hang.

`[run] isolation = "process"` gives each worker rank a child Python process
(`python -m hpcopt.sandbox`) that rebuilds the campaign's evaluator from the
config and evaluates one task at a time.  The worker talks to it over pipes
with one JSON object per line (no pickle).  A child that segfaults, calls
os._exit or exceeds the task's time limit is killed and replaced; the task is
recorded as failed (or timed out) and the campaign goes on.  The MPI rank
itself never runs user code, so nothing the objective does can take the job
down.

Protocol (parent -> child): {"task_id", "attempt", "payload"}; (child ->
parent): {"report": [step, value]} (answered by {"stop": bool}) any number of
times, then {"status", "values", "message"}.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

from .farm import Outcome, Task
from .mpi.runtime import STOP_SIGNALS
from .store import schema

STARTUP_TIMEOUT = 300.0   # importing numpy/scipy/numba and building the problem


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
        proc = subprocess.Popen([sys.executable, "-m", "hpcopt.sandbox"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, bufsize=1,
                                env=_child_env())
        proc.stdin.write(json.dumps(self.spec) + "\n")
        proc.stdin.flush()
        ready = _read_line(proc, STARTUP_TIMEOUT)
        if not isinstance(ready, str) or not ready or json.loads(ready).get("ready") is not True:
            code = _kill(proc)
            raise RuntimeError(f"the isolated evaluator process did not start (exit {code}): "
                               f"{ready!r}")
        return proc

    def evaluate(self, task: Task, report) -> Outcome:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        proc = self.proc
        proc.stdin.write(json.dumps({"task_id": task.task_id, "attempt": task.attempt,
                                     "payload": task.payload}, default=_jsonable) + "\n")
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
            msg = json.loads(line)
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


def _jsonable(value: Any):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# ---------------------------------------------------------------------------------------
# the child

def _child_evaluator(spec: dict):
    from .campaign.registry import get
    return get(spec["kind"]).sandbox_evaluator(spec)


def child_main() -> int:
    from .timelimit import TaskTimeout
    # stop signals are for the rank, which finishes its task and then ends this process:
    # a Ctrl-C that reaches the whole terminal's process group (or scancel's SIGTERM to
    # every process of the step) must not turn the running task into a failed row
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    stdin, stdout = sys.stdin, sys.stdout
    sys.stdout = sys.stderr            # the objective's prints must not corrupt the protocol
    spec = json.loads(stdin.readline())
    evaluator = _child_evaluator(spec)
    stdout.write(json.dumps({"ready": True}) + "\n")
    stdout.flush()

    def report(step: int, value: float) -> bool:
        stdout.write(json.dumps({"report": [int(step), float(value)]}) + "\n")
        stdout.flush()
        return bool(json.loads(stdin.readline())["stop"])

    for line in stdin:
        msg = json.loads(line)
        task = Task(msg["task_id"], msg["attempt"], msg["payload"])
        try:
            status, values, message = evaluator.evaluate(task, report)
        except TaskTimeout:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing objective is a result
            status, values, message = schema.FAILED, {}, f"{type(exc).__name__}: {exc}"
        values = {k: _jsonable(v) if isinstance(v, (np.ndarray, np.generic)) else v
                  for k, v in values.items()}
        # Python's json writes and reads NaN/Infinity, so failed fits travel as they are
        stdout.write(json.dumps({"status": int(status), "values": values,
                                 "message": message}) + "\n")
        stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
