"""Static mode: every rank evaluates its own contiguous range, in lockstep chunk rounds."""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from ..mpi.transport import as_transport
from ..partition import chunks, rank_range
from ..store import schema
from .evaluate import RowBuilder, TaskRunner, never_stop
from .guard import _real_exit, guarded, is_forked_copy
from .stopflag import ProcessStop, StopFlag
from .tasks import Evaluator, FarmOptions, FarmStats, Task


def run_static(world, *, n_tasks: int, done: np.ndarray, evaluator: Evaluator,
               dtype: np.dtype, options: FarmOptions,
               write_rows: Callable[[np.ndarray], None], parallel_write: bool,
               stop: StopFlag | None = None,
               on_round: Callable[[int, float | None], None] | None = None) -> FarmStats:
    """Rank-partitioned evaluation in lockstep chunk rounds.

    Every rank owns ``rank_range(n_tasks, size, rank)`` and evaluates it chunk by
    chunk with no messages during a chunk.  After each round the rows meet:
    each rank writes its own (parallel HDF5) or rank 0 gathers and writes them.
    A stop signal on any rank ends the campaign after the current round, on every
    rank with that signal (so rank 0 reports it and the job exits 3).
    Failed tasks are retried on the same rank (there is no coordinator to move them).
    `on_round(n, best)` runs on rank 0 after each round: the rows all ranks finished in
    it and their lowest ok objective (None if none), also when the rows went straight into
    a parallel HDF5 file (then a tiny gather brings the two numbers).
    """
    transport = as_transport(world)
    stop = stop if stop is not None else ProcessStop()
    rank, size = transport.rank, transport.size
    stats = FarmStats()
    start, end = rank_range(n_tasks, size, rank)
    mine = list(chunks(start, end, options.chunk_size)) if end > start else []
    longest = max(math.ceil((e - s) / options.chunk_size)
                  for s, e in (rank_range(n_tasks, size, r) for r in range(size)))
    runner = TaskRunner(evaluator, rank, options.task_timeout)
    rows = RowBuilder(dtype, rank)
    with guarded(rank):
        try:
            for round_no in range(longest):
                if round_no < len(mine):
                    a, b = mine[round_no]
                    todo = [t for t in range(a, b) if not done[t]]
                    if todo and runner.prepare is not None:
                        runner.prepare(np.asarray(todo, dtype=np.int64))
                    done_many = 0
                    if runner.evaluate_many is not None and not options.max_retries:
                        done_many = runner.run_many(np.asarray(todo, dtype=np.int64), rows)
                    for task_id in todo[done_many:]:
                        _evaluate_with_retries(runner, rows, task_id, options, stats)
                    if is_forked_copy():
                        _real_exit(0)
                local = rows.take()
                if parallel_write:
                    write_rows(local)
                    counts = (transport.gather((len(local), _best(local)))
                              if on_round is not None else None)
                else:
                    gathered = transport.gather(local)
                    if rank == 0:
                        every = np.concatenate(gathered)
                        write_rows(every)
                        counts = [(len(every), _best(every))]
                if on_round is not None and rank == 0:
                    bests = [b for _, b in counts if b is not None]
                    on_round(sum(n for n, _ in counts), min(bests) if bests else None)
                stats.tasks_done += len(local)
                signum = transport.allreduce_max(stop.signal() or 0)
                if signum:
                    stop.request(signum)
                    stats.interrupted = True
                    break
        finally:
            close = getattr(evaluator, "close", None)
            if close is not None:
                close()
    return stats


def _best(rows: np.ndarray) -> float | None:
    """The lowest finite objective of the ok rows, None if there is none."""
    if not len(rows) or "objective" not in rows.dtype.names:
        return None
    ok = rows["objective"][rows["status"] == schema.OK]
    ok = ok[np.isfinite(ok)]
    return float(ok.min()) if len(ok) else None


def _evaluate_with_retries(runner: TaskRunner, rows: RowBuilder, task_id: int,
                           options: FarmOptions, stats: FarmStats) -> None:
    attempt = 0
    while True:
        task = Task(task_id, attempt)
        t0 = time.time()
        status, message, values = runner.run(task, never_stop)
        wall = time.time() - t0
        if is_forked_copy():
            _real_exit(0)
        if status != schema.FAILED or attempt >= options.max_retries:
            rows.add(task, status, message, values, t0, wall)
            return
        attempt += 1
        stats.retries += 1
