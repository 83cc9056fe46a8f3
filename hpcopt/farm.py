"""The task farm: the one place where tasks and results cross MPI.

Dynamic mode: rank 0 (coordinator) hands out chunks of tasks, worker ranks
return result rows; failures are retried on another rank; a worker that sends
REPORT during a task gets a DECISION back (HPO pruning).  Static mode: each
rank evaluates a contiguous range of tasks, streaming it in chunks, and the
rows meet at rank 0 (or go straight into a parallel HDF5 file) once per chunk
round.  At world size 1 the coordinator evaluates tasks itself.

What a task *is* stays outside: a :class:`TaskSource` on rank 0 decides what to
evaluate next and receives final rows, an :class:`Evaluator` on every rank
turns a task into an outcome.  Neither calls MPI.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Protocol

import numpy as np

from .mpi import tags
from .mpi.runtime import (World, any_source, any_tag, poll, recv_quietly, send_quietly,
                          stop_requested, wait_quietly)
from .partition import chunks, rank_range
from .store import schema
from .timelimit import TaskTimeout, time_limit

log = logging.getLogger("hpcopt")


@dataclass
class Task:
    task_id: int
    attempt: int = 0
    payload: Any = None        # campaign data (HPO: params); sweeps derive starts from the id
    avoid_rank: int = -1       # a retried task prefers another rank than the one that failed


class Outcome(NamedTuple):
    status: int                # schema.OK / FAILED / TIMEOUT / PRUNED
    values: dict               # campaign columns of the result row
    message: str = ""


class Evaluator(Protocol):
    def inputs(self, task: Task) -> dict:
        """Row values known before evaluating (start point, parameters): kept even if the
        task fails or times out."""

    def evaluate(self, task: Task, report: Callable[[int, float], bool]) -> Outcome: ...


class TaskSource(Protocol):
    """The coordinator-side policy (sweep order, HPO sampler...)."""

    def next_task(self) -> Task | None:
        """The next task to run, or None if there is none right now."""

    def exhausted(self) -> bool:
        """True once no further task will ever be produced."""

    def on_results(self, rows: np.ndarray) -> None:
        """Final rows (ok, or failed after retries), a structured array."""

    def on_report(self, task_id: int, step: int, value: float) -> bool:
        """An intermediate value; return True to stop the task (prune)."""


@dataclass
class FarmOptions:
    chunk_size: int = 1
    max_retries: int = 0
    task_timeout: float | None = None   # seconds of wall time per task attempt
    result_interval: float = 0.2        # a worker sends finished rows at least this often
    prefetch: bool = True               # keep a second chunk queued on each worker (not for HPO:
                                        # a trial sent is a trial started, the sampler decides late)


# ---------------------------------------------------------------------------------------
# evaluating one task (every rank)

@functools.lru_cache(maxsize=8)
def _row_template(dtype: np.dtype) -> np.ndarray:
    return schema.empty_rows(dtype, [0])


def run_task(evaluator: Evaluator, task: Task, dtype: np.dtype, rank: int,
             timeout: float | None, report: Callable[[int, float], bool]) -> np.ndarray:
    """Evaluate one task and build its result row; exceptions become data."""
    t0 = time.time()
    inputs = evaluator.inputs(task)
    try:
        with time_limit(timeout):
            outcome = evaluator.evaluate(task, report)
    except TaskTimeout as exc:
        outcome = Outcome(schema.TIMEOUT, {}, f"task {exc}")
    except Exception as exc:  # the objective's failure is a result, not a crash
        outcome = Outcome(schema.FAILED, {}, f"{type(exc).__name__}: {exc}")
    status, values, message = outcome
    objective = values.get("objective")
    if status == schema.OK and objective is not None and not math.isfinite(float(objective)):
        status, message = schema.FAILED, f"objective is not finite ({objective})"
    row = _row_template(dtype).copy()
    row["task_id"] = task.task_id
    for name, value in {**inputs, **values}.items():
        row[name] = value
    row["status"] = status
    row["attempts"] = task.attempt + 1
    row["rank"] = rank
    row["t_start"] = t0
    row["wall"] = time.time() - t0
    row["message"] = schema.encode_message(message)
    return row


def _never_stop(step: int, value: float) -> bool:
    return False


# ---------------------------------------------------------------------------------------
# dynamic mode

@dataclass
class FarmStats:
    tasks_done: int = 0
    retries: int = 0
    interrupted: bool = False
    worker_busy: dict[int, float] = field(default_factory=dict)


def run_dynamic(world: World, *, source: TaskSource | None, evaluator: Evaluator,
                dtype: np.dtype, options: FarmOptions) -> FarmStats:
    """Run the farm on every rank; `source` is only used (and needed) on rank 0."""
    if world.size == 1:
        return _run_local(world, source, evaluator, dtype, options)
    if world.is_root:
        return _Coordinator(world, source, dtype, options).run()
    _run_worker(world, evaluator, dtype, options)
    return FarmStats()


def _finalize(source: TaskSource, rows: np.ndarray, payloads: dict[int, Any], retry: deque,
              options: FarmOptions, stats: FarmStats, rank: int) -> None:
    """Queue failed rows for a retry (not timeouts or prunes); the rest go to the source."""
    again = (rows["status"] == schema.FAILED) & (rows["attempts"] <= options.max_retries)
    for r in rows[again]:
        tid = int(r["task_id"])
        retry.append(Task(tid, int(r["attempts"]), payloads.get(tid), avoid_rank=rank))
    stats.retries += int(again.sum())
    final = rows[~again]
    if len(final):
        stats.tasks_done += len(final)
        source.on_results(final)


def _run_local(world, source, evaluator, dtype, options) -> FarmStats:
    stats = FarmStats()
    retry: deque[Task] = deque()
    while not stop_requested():
        task = retry.popleft() if retry else source.next_task()
        if task is None:
            if source.exhausted():
                break
            raise RuntimeError("task source has nothing to run and nothing pending at world size 1")
        report = (lambda step, value, tid=task.task_id: source.on_report(tid, step, value))
        row = run_task(evaluator, task, dtype, world.rank, options.task_timeout, report)
        _finalize(source, row, {task.task_id: task.payload}, retry, options, stats, world.rank)
    stats.interrupted = stop_requested()
    return stats


class _Coordinator:
    """Rank 0 of dynamic mode: hands out chunks, collects rows, retries, answers reports."""

    def __init__(self, world: World, source: TaskSource, dtype: np.dtype, options: FarmOptions):
        self.world, self.source, self.dtype, self.options = world, source, dtype, options
        self.workers = list(range(1, world.size))
        self.outstanding: dict[int, dict[int, Task]] = {w: {} for w in self.workers}
        self.retry: deque[Task] = deque()
        self.stats = FarmStats()
        # keep each worker a chunk ahead so it never waits for the coordinator
        self.window = options.chunk_size * (2 if options.prefetch else 1)

    def run(self) -> FarmStats:
        comm = self.world.comm
        stopping = False
        live = set(self.workers)       # workers that have not yet sent their final rows
        started: set[int] = set()      # work starts when every worker is up: a fair first round
        tick = getattr(self.source, "tick", None)   # lets the source flush buffered rows
        while live:
            if tick is not None:
                tick()
            if not stopping and (stop_requested() or self._finished()):
                stopping = True
                self.stats.interrupted = stop_requested()
                self._broadcast_stop(live)
            got = recv_quietly(comm, any_source(), any_tag(), timeout=0.5)
            if got is None:
                continue
            msg, src, tag = got
            if tag == tags.READY:
                started.add(src)
                if len(started) == len(self.workers) and not stopping:
                    log.debug(f"all {len(self.workers)} workers ready; chunks of "
                              f"{self.options.chunk_size}, window {self.window}")
                    for w in self.workers:
                        self._top_up(w)
            elif tag == tags.RESULTS:
                rows, final = msg
                self._take_rows(src, rows)
                if final:
                    live.discard(src)
                elif not stopping:
                    # workers that ran dry first (HPO may have new trials now), then the sender
                    for w in self.workers:
                        if not self.outstanding[w] and w in live and len(started) == len(self.workers):
                            self._top_up(w)
                    self._top_up(src)
            elif tag == tags.REPORT:
                task_id, step, value = msg
                decision = bool(self.source.on_report(task_id, step, value))
                send_quietly(comm, decision, src, tags.DECISION)
        return self.stats

    def _finished(self) -> bool:
        return (not self.retry and self.source.exhausted()
                and not any(self.outstanding[w] for w in self.workers))

    def _take_rows(self, src: int, rows: np.ndarray | None) -> None:
        if rows is None or len(rows) == 0:
            return
        done = self.outstanding[src]
        payloads = {}
        for tid in rows["task_id"].tolist():
            task = done.pop(tid, None)
            if task is not None and task.payload is not None:
                payloads[tid] = task.payload
        _finalize(self.source, rows, payloads, self.retry, self.options, self.stats, src)

    def _next_for(self, worker: int) -> Task | None:
        for i, task in enumerate(self.retry):
            if task.avoid_rank != worker or len(self.workers) == 1:
                del self.retry[i]
                return task
        return self.source.next_task()

    def _top_up(self, worker: int) -> None:
        """Fill `worker` up to `window` outstanding tasks (so it never waits for us)."""
        room = self.window - len(self.outstanding[worker])
        batch = []
        while len(batch) < room:
            task = self._next_for(worker)
            if task is None:
                break
            batch.append(task)
        if batch:
            for task in batch:
                self.outstanding[worker][task.task_id] = task
            send_quietly(self.world.comm, batch, worker, tags.TASKS)

    def _broadcast_stop(self, live: set[int]) -> None:
        for w in sorted(live):
            send_quietly(self.world.comm, None, w, tags.STOP)


def _run_worker(world: World, evaluator: Evaluator, dtype: np.dtype, options: FarmOptions) -> None:
    comm = world.comm
    send_quietly(comm, None, 0, tags.READY)
    queue: deque[Task] = deque()
    finished: list[np.ndarray] = []
    last_send = time.monotonic()
    stop = False
    n_done = 0

    def report(task_id: int, step: int, value: float) -> bool:
        send_quietly(comm, (task_id, int(step), float(value)), 0, tags.REPORT)
        decision, _, _ = recv_quietly(comm, 0, tags.DECISION)
        return bool(decision)

    def take(msg, tag) -> None:
        nonlocal stop
        if tag == tags.TASKS:
            queue.extend(msg)
        elif tag == tags.STOP:
            stop = True

    def send(final: bool) -> None:
        nonlocal last_send
        rows = np.concatenate(finished) if finished else np.zeros(0, dtype=dtype)
        finished.clear()
        send_quietly(comm, (rows, final), 0, tags.RESULTS)
        last_send = time.monotonic()

    while True:
        while (got := poll(comm, 0, tags.TASKS)) or (got := poll(comm, 0, tags.STOP)):
            take(got[0], got[2])
        if stop:  # finish nothing more: unstarted tasks stay pending (resume redoes them)
            send(final=True)
            log.debug(f"rank {world.rank}: {n_done} tasks evaluated, {len(queue)} left pending")
            return
        if queue:
            task = queue.popleft()
            n_done += 1
            finished.append(run_task(evaluator, task, dtype, world.rank, options.task_timeout,
                                     lambda step, value, tid=task.task_id: report(tid, step, value)))
            if (not queue or len(finished) >= options.chunk_size
                    or time.monotonic() - last_send >= options.result_interval):
                send(final=False)
        else:
            msg, _, tag = recv_quietly(comm, 0, any_tag())
            take(msg, tag)


# ---------------------------------------------------------------------------------------
# static mode

def run_static(world: World, *, n_tasks: int, done: np.ndarray, evaluator: Evaluator,
               dtype: np.dtype, options: FarmOptions,
               write_rows: Callable[[np.ndarray], None], parallel_write: bool,
               on_round: Callable[[int, float], None] | None = None) -> FarmStats:
    """Rank-partitioned evaluation in lockstep chunk rounds.

    Every rank owns ``rank_range(n_tasks, size, rank)`` and evaluates it chunk by
    chunk with no messages during a chunk.  After each round the rows meet:
    each rank writes its own (parallel HDF5) or rank 0 gathers and writes them.
    A stop signal on any rank ends the campaign after the current round.
    Failed tasks are retried on the same rank (there is no coordinator to move them).
    `on_round(rows, best)` runs on rank 0 after each round: the rows all ranks finished
    in it and their lowest ok objective (inf if none), which travel with the round's
    stop flag, so rank 0 knows them even when it does not see the rows (parallel HDF5).
    """
    stats = FarmStats()
    start, stop = rank_range(n_tasks, world.size, world.rank)
    mine = [(a, b) for a, b in chunks(start, stop, options.chunk_size)] if stop > start else []
    longest = max(math.ceil((e - s) / options.chunk_size)
                  for s, e in (rank_range(n_tasks, world.size, r) for r in range(world.size)))
    for round_no in range(longest):
        rows = []
        if round_no < len(mine):
            a, b = mine[round_no]
            for task_id in range(a, b):
                if done[task_id]:
                    continue
                attempt = 0
                while True:
                    row = run_task(evaluator, Task(task_id, attempt), dtype, world.rank,
                                   options.task_timeout, _never_stop)
                    if row[0]["status"] != schema.FAILED or attempt >= options.max_retries:
                        break
                    attempt += 1
                    stats.retries += 1
                rows.append(row)
        local = np.concatenate(rows) if rows else np.zeros(0, dtype=dtype)
        if parallel_write:
            write_rows(local)
        else:
            gathered = world.gather(local)
            if world.is_root:
                write_rows(np.concatenate(gathered))
        stats.tasks_done += len(local)
        stop_any, n_round, best = _round_summary(world, stop_requested(), local)
        if on_round is not None and world.is_root:
            on_round(n_round, best)
        if stop_any:
            stats.interrupted = True
            break
    return stats


def _round_summary(world: World, stop: bool, rows: np.ndarray) -> tuple[bool, int, float]:
    """(stop on any rank, rows of all ranks, lowest ok objective of all): one quiet
    collective per round, the one that carried the stop flag alone."""
    best = math.inf
    if len(rows) and "objective" in rows.dtype.names:
        ok = rows["objective"][rows["status"] == schema.OK]
        ok = ok[np.isfinite(ok)]
        best = float(ok.min()) if len(ok) else math.inf
    mine = np.array([1.0 if stop else 0.0, float(len(rows)), best])
    if world.size == 1:
        return bool(stop), len(rows), best
    every = np.empty((world.size, 3))
    wait_quietly(world.comm.Iallgather(mine, every))
    return bool(every[:, 0].any()), int(every[:, 1].sum()), float(every[:, 2].min())
