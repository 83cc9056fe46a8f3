"""The child side of process isolation (`python -m hpcopt.sandbox_child`): rebuild the
campaign kind's evaluator from the config and answer one task at a time over a private
protocol (see hpcopt.sandbox, the rank's side, for the protocol and why it is private).
"""

from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np

from .campaign.registry import get
from .farm import Task
from .mpi.runtime import STOP_SIGNALS
from .sandbox import jsonable
from .store import schema


def _child_evaluator(spec: dict):
    return get(spec["kind"]).sandbox_evaluator(spec)


def _private_protocol() -> tuple:
    """Move the protocol off stdin/stdout onto descriptors only this process uses (module
    docstring); return the (reader, writer) file objects."""
    proto_in, proto_out = os.dup(0), os.dup(1)        # os.dup: not inherited across exec
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)                                     # the objective's prints go to stderr

    def hide_in_forked_child() -> None:
        os.dup2(devnull, proto_in)
        os.dup2(devnull, proto_out)

    os.register_at_fork(after_in_child=hide_in_forked_child)
    return os.fdopen(proto_in, "r"), os.fdopen(proto_out, "w")


def _leave_signals_to_the_rank() -> None:
    """The rank decides when to stop (after the current task): stop signals sent to the
    whole job or process group must not kill the task half-way (it would be recorded as
    failed instead of staying pending), and the child must not outlive its rank."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: None)   # not SIG_IGN: exec resets handlers
    if sys.platform.startswith("linux"):
        import ctypes
        try:
            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)   # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def child_main() -> int:
    from .timelimit import TaskTimeout
    _leave_signals_to_the_rank()
    stdin, stdout = _private_protocol()
    me = os.getpid()
    spec = json.loads(stdin.readline())
    evaluator = _child_evaluator(spec)
    stdout.write(json.dumps({"ready": True, "nonce": spec.get("nonce")}) + "\n")
    stdout.flush()
    nonce = None

    def report(step: int, value: float) -> bool:
        stdout.write(json.dumps({"report": [int(step), float(value)], "nonce": nonce}) + "\n")
        stdout.flush()
        return bool(json.loads(stdin.readline())["stop"])

    for line in stdin:
        msg = json.loads(line)
        nonce = msg.get("nonce")
        task = Task(msg["task_id"], msg["attempt"], msg["payload"])
        try:
            status, values, message = evaluator.evaluate(task, report)
        except TaskTimeout:
            raise
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # noqa: BLE001 - a result
            status, values, message = schema.FAILED, {}, f"{type(exc).__name__}: {exc}"
        if os.getpid() != me:          # a child the objective forked came back here
            os._exit(0)
        values = {k: jsonable(v) if isinstance(v, (np.ndarray, np.generic)) else v
                  for k, v in values.items()}
        # Python's json writes and reads NaN/Infinity, so failed fits travel as they are
        stdout.write(json.dumps({"status": int(status), "values": values,
                                 "message": message, "nonce": nonce}) + "\n")
        stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
