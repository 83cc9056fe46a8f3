"""A worker rank of dynamic mode: evaluate the tasks its coordinator sends, send rows back.

Protocol, seen from the worker (tags in hpcopt.mpi.tags): READY once; then TASKS
batches arrive and RESULTS go back, at least every ``chunk_size`` rows, every
``result_interval`` seconds, and whenever the queue runs dry (which is also how a
worker asks for more); REPORT during a task waits for its DECISION.  A stop
signal on this rank is forwarded once (STOP_REQUEST) and no further task starts.
STOP: send the final rows and leave; tasks not started stay pending (resume
redoes them).
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np

from ..mpi import tags
from ..mpi.transport import ANY, Transport
from .evaluate import RowBuilder, TaskRunner
from .guard import _real_exit, is_forked_copy
from .stopflag import StopFlag
from .tasks import Evaluator, FarmOptions, Task, TaskBatch, TaskQueue, pack_rows

log = logging.getLogger("hpcopt")

#: seconds between looks for new messages while tasks are queued (a STOP is seen this fast)
POLL_INTERVAL = 0.005
#: seconds between looks at the stop flag while waiting for messages
IDLE_TIMEOUT = 0.25


def run_worker(transport: Transport, evaluator: Evaluator, dtype: np.dtype,
               options: FarmOptions, stop: StopFlag, parent: int = 0) -> int:
    """The worker loop; returns the number of tasks evaluated."""
    runner = TaskRunner(evaluator, transport.rank, options.task_timeout)
    rows = RowBuilder(dtype, transport.rank)
    queue = TaskQueue()
    state = {"stop": False, "asked": False}
    transport.send(None, parent, tags.READY)

    def take(message) -> None:
        if message.tag == tags.TASKS:
            batch: TaskBatch = message.obj
            if runner.prepare is not None:
                runner.prepare(batch.ids)
            queue.add(batch)
        elif message.tag == tags.STOP:
            state["stop"] = True
        else:
            raise RuntimeError(f"rank {transport.rank}: unexpected message (tag {message.tag}) "
                               f"from rank {message.source}")

    def drain() -> None:
        while (message := transport.poll(parent, ANY)) is not None:
            take(message)

    def send(final: bool) -> None:
        transport.send((pack_rows(rows.take()), final), parent, tags.RESULTS)

    running: list[int] = [-1]        # the task being evaluated (for its reports)

    def report(step: int, value: float) -> bool:
        transport.send((running[0], int(step), float(value)), parent, tags.REPORT)
        return bool(transport.recv(parent, tags.DECISION).obj)

    def evaluate_one(task: Task) -> None:
        running[0] = task.task_id
        t0 = time.time()
        status, message, values = runner.run(task, report)
        rows.add(task, status, message, values, t0, time.time() - t0)

    def forward_stop() -> bool:
        """True once this rank has a stop signal (forwarded to the coordinator once)."""
        signum = stop.signal()
        if signum is not None and not state["asked"]:
            state["asked"] = True
            transport.send(signum, parent, tags.STOP_REQUEST)
        return signum is not None

    n_done = 0
    last_send = last_poll = time.monotonic()
    while True:
        if state["stop"]:
            send(final=True)
            transport.flush()
            log.debug(f"rank {transport.rank}: {n_done} tasks evaluated, {len(queue)} left pending")
            return n_done
        signalled = forward_stop()
        if queue and not signalled:
            if runner.evaluate_many is not None:     # a chunk in the evaluator's own loop
                n_done += run_chunk(runner, queue, rows, options.chunk_size, evaluate_one)
            else:
                evaluate_one(queue.pop())
                n_done += 1
            if is_forked_copy():      # a child the objective forked came back here: leave
                _real_exit(0)
            now = time.monotonic()
            if (not queue or len(rows) >= options.chunk_size
                    or now - last_send >= options.result_interval):
                send(final=False)
                last_send = now
            if not queue or now - last_poll >= POLL_INTERVAL:
                drain()
                last_poll = now
            continue
        if len(rows):                  # stopping on a signal: hand in what is done
            send(final=False)
            last_send = time.monotonic()
        message = transport.recv(parent, ANY, timeout=IDLE_TIMEOUT)
        if message is not None:
            take(message)




def run_chunk(runner: TaskRunner, queue: TaskQueue, rows: RowBuilder, chunk_size: int,
              evaluate_one: Callable[[Task], None]) -> int:
    """Up to `chunk_size` first attempts from the front of the queue through the
    evaluator's own loop (what it does not take goes back to the front), or the task at
    the front alone (a retry, a payload).  Returns the number of tasks done."""
    ids = queue.take_fresh(chunk_size)
    if not len(ids):
        evaluate_one(queue.pop())
        return 1
    done = runner.run_many(ids, rows)
    queue.push_front(TaskBatch(ids[done:]))
    return done
