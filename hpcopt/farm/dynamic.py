"""Dynamic mode: every rank's part (coordinator, sub-coordinator, worker, or all at size 1)."""

from __future__ import annotations

import logging
import time
from collections import deque

import numpy as np

from ..mpi.transport import as_transport
from ..store import schema
from .coordinator import Coordinator, SubCoordinator
from .evaluate import RowBuilder, TaskRunner
from .guard import _real_exit, guarded, is_forked_copy
from .stopflag import ProcessStop, StopFlag
from .tasks import Evaluator, FarmOptions, FarmStats, Task, TaskBatch, TaskQueue, TaskSource
from .tree import build_tree
from .worker import run_chunk, run_worker

log = logging.getLogger("hpcopt")


def run_dynamic(world, *, source: TaskSource | None, evaluator: Evaluator,
                dtype: np.dtype, options: FarmOptions, stop: StopFlag | None = None) -> FarmStats:
    """Run the farm on every rank of `world` (a World or a Transport); `source` is only
    used (and needed) on rank 0.  Returns rank 0's statistics there, empty ones elsewhere."""
    transport = as_transport(world)
    stop = stop if stop is not None else ProcessStop()
    rank = transport.rank
    if transport.size == 1:
        with guarded(rank):
            try:
                return _run_local(rank, source, evaluator, dtype, options, stop)
            finally:
                _close(evaluator)
    tree = build_tree(transport, options.hierarchy)
    role = tree.role(rank)
    if role == "coordinator":
        if tree.sub_coordinators:
            log.info(f"task farm: {len(tree.sub_coordinators)} node sub-coordinator(s) under "
                     f"rank 0, {len(tree.children[0])} children of rank 0")
        return Coordinator(transport, source, dtype, options, stop, tree.children[0],
                           members=tree.members).run()
    if role == "sub-coordinator":
        SubCoordinator(transport, dtype, options, stop, tree.parent[rank],
                       tree.children[rank]).run()
        return FarmStats()
    with guarded(rank):
        try:
            run_worker(transport, evaluator, dtype, options, stop, parent=tree.parent[rank])
        finally:
            _close(evaluator)
    return FarmStats()


def _close(evaluator: Evaluator) -> None:
    close = getattr(evaluator, "close", None)
    if close is not None:
        close()


def _run_local(rank: int, source: TaskSource, evaluator: Evaluator, dtype: np.dtype,
               options: FarmOptions, stop: StopFlag) -> FarmStats:
    """World size 1: the coordinator evaluates its tasks itself (rows per chunk)."""
    stats = FarmStats()
    runner = TaskRunner(evaluator, rank, options.task_timeout)
    rows = RowBuilder(dtype, rank)
    retry: deque[Task] = deque()
    queue = TaskQueue()
    payloads: dict[int, object] = {}
    next_tasks = getattr(source, "next_tasks", None)
    tick = getattr(source, "tick", None)
    last_hand_in = time.monotonic()

    def hand_in() -> None:
        nonlocal last_hand_in
        last_hand_in = time.monotonic()
        done = rows.take()
        if not len(done):
            return
        again = (done["status"] == schema.FAILED) & (done["attempts"] <= options.max_retries)
        for i in np.flatnonzero(again).tolist():
            tid = int(done["task_id"][i])
            retry.append(Task(tid, int(done["attempts"][i]), payloads.get(tid), rank))
        stats.retries += int(again.sum())
        final = done[~again]
        for tid in final["task_id"].tolist():
            payloads.pop(tid, None)
        if len(final):
            stats.tasks_done += len(final)
            source.on_results(final)

    def refill() -> None:
        if retry:
            queue.add(TaskBatch.of([retry.popleft()]))
            return
        if next_tasks is not None:
            batch = next_tasks(options.chunk_size)
            batch = batch if isinstance(batch, TaskBatch) else TaskBatch.of(batch)
        else:
            task = source.next_task()
            batch = TaskBatch.of([] if task is None else [task])
        if len(batch):
            if runner.prepare is not None:
                runner.prepare(batch.ids)
            if batch.payloads is not None:
                payloads.update(zip(batch.ids.tolist(), batch.payloads))
            queue.add(batch)

    def evaluate_one(task: Task) -> None:
        t0 = time.time()
        status, message, values = runner.run(
            task, lambda step, value: source.on_report(task.task_id, step, value))
        rows.add(task, status, message, values, t0, time.time() - t0)

    while stop.signal() is None:
        if tick is not None:
            tick()
        if not queue:
            refill()
        if not queue:
            if len(rows):
                hand_in()        # results may let the source (HPO) produce new tasks
                continue
            if source.exhausted() and not retry:
                break
            raise RuntimeError("task source has nothing to run and nothing pending at world size 1")
        if runner.evaluate_many is not None:
            run_chunk(runner, queue, rows, options.chunk_size, evaluate_one)
        else:
            evaluate_one(queue.pop())
        if is_forked_copy():
            _real_exit(0)
        if (len(rows) >= options.chunk_size or not queue
                or time.monotonic() - last_hand_in >= options.result_interval):
            hand_in()
    hand_in()
    stats.interrupted = stop.signal() is not None
    return stats
