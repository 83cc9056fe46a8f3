"""What travels through the farm: tasks, outcomes, the two roles' contracts, options."""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple, Protocol, Sequence

import numpy as np


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


class ManyOutcome(NamedTuple):
    """What ``Evaluator.evaluate_many`` returns: the outcomes of the first `n` tasks asked
    for, column by column, and what task `n` raised if the loop stopped there."""

    n: int
    status: np.ndarray                  # (n,) schema.OK / FAILED ...
    values: dict                        # column name -> (n, ...) array
    messages: dict                      # index -> message (failures)
    t_start: np.ndarray                 # (n,) time.time() at each task's start
    wall: np.ndarray                    # (n,) seconds
    error: BaseException | None = None  # raised by task n (an objective's SystemExit, ...)


class Evaluator(Protocol):
    """The worker-side role: a task in, an outcome out.  Optional extras the farm uses
    when present: ``prepare(task_ids)`` (called with the ids of each batch a worker
    receives, before any of them is evaluated: lets an evaluator compute per-batch
    inputs at once), ``evaluate_many(task_ids) -> ManyOutcome | None`` (first attempts of
    tasks without payload, in one loop, when no time limit applies: the evaluator catches
    every exception of a task, BaseException included, and hands it back as ``error``;
    None: not for these tasks) and ``close()`` (called when the farm ends)."""

    def inputs(self, task: Task) -> dict:
        """Row values known before evaluating (start point, parameters): recorded when a
        task fails or times out (an outcome that is ok carries every value of its row)."""

    def evaluate(self, task: Task, report: Callable[[int, float], bool]) -> Outcome: ...


class TaskSource(Protocol):
    """The coordinator-side policy (sweep order, HPO sampler...).  Optional extras:
    ``next_tasks(n)`` (up to n tasks at once, a TaskBatch or a list; sources of
    independent tasks answer with one array slice instead of n calls) and ``tick()``
    (called between messages: flush buffered rows)."""

    def next_task(self) -> Task | None:
        """The next task to run, or None if there is none right now."""

    def exhausted(self) -> bool:
        """True once no further task will ever be produced."""

    def on_results(self, rows: np.ndarray) -> None:
        """Final rows (ok, or failed after retries), a structured array."""

    def on_report(self, task_id: int, step: int, value: float) -> bool:
        """An intermediate value; return True to stop the task (prune)."""


class TaskBatch:
    """Tasks as arrays (one message of the farm): ids, attempts, ranks to avoid, payloads.
    ``attempts``/``avoid`` are None for first attempts with nothing to avoid, ``payloads``
    None when no task has one (sweeps): such a batch travels as its ids alone."""

    __slots__ = ("ids", "attempts", "avoid", "payloads")

    def __init__(self, ids, attempts=None, avoid=None, payloads: list | None = None):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.attempts = None if attempts is None else np.asarray(attempts, dtype=np.int32)
        self.avoid = None if avoid is None else np.asarray(avoid, dtype=np.int32)
        if self.attempts is not None and self.avoid is None:
            self.avoid = np.full(len(self.ids), -1, dtype=np.int32)
        if self.avoid is not None and self.attempts is None:
            self.attempts = np.zeros(len(self.ids), dtype=np.int32)
        if self.attempts is not None and not self.attempts.any() and (self.avoid == -1).all():
            self.attempts = self.avoid = None
        self.payloads = payloads if payloads is not None and any(p is not None for p in payloads) \
            else None

    def __len__(self) -> int:
        return len(self.ids)

    def task(self, i: int) -> Task:
        if self.attempts is None:
            return Task(int(self.ids[i]), 0, None if self.payloads is None else self.payloads[i])
        return Task(int(self.ids[i]), int(self.attempts[i]),
                    None if self.payloads is None else self.payloads[i], int(self.avoid[i]))

    def tasks(self) -> list[Task]:
        if self.attempts is None and self.payloads is None:
            return [Task(i) for i in self.ids.tolist()]
        return [self.task(i) for i in range(len(self))]

    def _parts(self) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.ids)
        if self.attempts is None:
            return np.zeros(n, dtype=np.int32), np.full(n, -1, dtype=np.int32)
        return self.attempts, self.avoid

    def split(self, n: int) -> tuple["TaskBatch", "TaskBatch"]:
        """The first n tasks and the rest."""
        p = self.payloads
        a, v = (None, None) if self.attempts is None else (self.attempts, self.avoid)
        return (TaskBatch(self.ids[:n], None if a is None else a[:n], None if v is None else v[:n],
                          None if p is None else p[:n]),
                TaskBatch(self.ids[n:], None if a is None else a[n:], None if v is None else v[n:],
                          None if p is None else p[n:]))

    @classmethod
    def of(cls, tasks: Iterable[Task]) -> "TaskBatch":
        tasks = list(tasks)
        return cls([t.task_id for t in tasks], [t.attempt for t in tasks],
                   [t.avoid_rank for t in tasks], [t.payload for t in tasks])

    @classmethod
    def concat(cls, batches: Sequence["TaskBatch"]) -> "TaskBatch":
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls([])
        if len(batches) == 1:
            return batches[0]
        payloads = None
        if any(b.payloads is not None for b in batches):
            payloads = [p for b in batches for p in (b.payloads or [None] * len(b))]
        attempts = avoid = None
        if any(b.attempts is not None for b in batches):
            parts = [b._parts() for b in batches]
            attempts = np.concatenate([a for a, _ in parts])
            avoid = np.concatenate([v for _, v in parts])
        return cls(np.concatenate([b.ids for b in batches]), attempts, avoid, payloads)

    def __getstate__(self):         # raw bytes: unpickling numpy arrays costs more
        return (self.ids.tobytes(), None if self.attempts is None else self.attempts.tobytes(),
                None if self.avoid is None else self.avoid.tobytes(), self.payloads)

    def __setstate__(self, state):
        ids, attempts, avoid, self.payloads = state
        self.ids = np.frombuffer(ids, dtype=np.int64)
        self.attempts = None if attempts is None else np.frombuffer(attempts, dtype=np.int32)
        self.avoid = None if avoid is None else np.frombuffer(avoid, dtype=np.int32)


class TaskQueue:
    """A worker's queue of tasks, kept as the batches they came in (no object per task
    until one is evaluated on its own)."""

    def __init__(self):
        self.batches: deque[TaskBatch] = deque()
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def add(self, batch: TaskBatch) -> None:
        if len(batch):
            self.batches.append(batch)
            self.n += len(batch)

    def push_front(self, batch: TaskBatch) -> None:
        if len(batch):
            self.batches.appendleft(batch)
            self.n += len(batch)

    def pop(self) -> Task:
        """The task at the front."""
        batch = self.batches.popleft()
        self.n -= len(batch)
        if len(batch) == 1:                  # HPO: a trial per message
            return batch.task(0)
        first, rest = batch.split(1)
        self.push_front(rest)
        return first.task(0)

    def take_fresh(self, n: int) -> np.ndarray:
        """Ids of up to n first attempts without payload from the front (maybe none)."""
        if not self.batches:
            return np.zeros(0, dtype=np.int64)
        front = self.batches[0]
        if front.attempts is not None or front.payloads is not None:
            return np.zeros(0, dtype=np.int64)
        self.batches.popleft()
        taken, rest = (front, None) if len(front) <= n else front.split(n)
        if rest is not None:
            self.batches.appendleft(rest)
        self.n -= len(taken)
        return taken.ids


def pack_rows(rows: np.ndarray | None):
    """Rows as they travel: raw bytes (unpickling a structured array costs ~15 us a
    message); with Python objects (HPO's outcome text), the bytes of the other fields and
    a list per object field (unpickling the array itself: 18 us a row, this: 7)."""
    if rows is None:
        return None
    if not rows.dtype.hasobject:
        return rows.tobytes()
    plain, objects = _split_fields(rows.dtype)
    packed = np.empty(len(rows), dtype=plain)
    for name in plain.names:
        packed[name] = rows[name]
    return packed.tobytes(), [rows[name].tolist() for name in objects]


def unpack_rows(packed, dtype: np.dtype) -> np.ndarray | None:
    if packed is None:
        return None
    if not dtype.hasobject:
        return np.frombuffer(packed, dtype=dtype).copy()
    plain, objects = _split_fields(dtype)
    raw, columns = packed
    rows = np.empty(len(raw) // plain.itemsize, dtype=dtype)
    fields = np.frombuffer(raw, dtype=plain)
    for name in plain.names:
        rows[name] = fields[name]
    for name, values in zip(objects, columns):
        rows[name] = values
    return rows


@functools.lru_cache(maxsize=16)
def _split_fields(dtype: np.dtype) -> tuple[np.dtype, tuple[str, ...]]:
    """(the packed dtype of the fields without objects, the names of those with)."""
    objects = tuple(n for n in dtype.names if dtype[n].hasobject)
    return np.dtype([(n, dtype[n]) for n in dtype.names if n not in objects]), objects


def concat_rows(parts: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """np.concatenate for many small row arrays of one dtype (it promotes the dtype of
    every part first, ~10 us each)."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return np.zeros(0, dtype=dtype)
    if dtype.hasobject:
        return np.concatenate(parts, dtype=dtype, casting="no")
    return np.frombuffer(b"".join(p.tobytes() for p in parts), dtype=dtype).copy()


@dataclass
class FarmOptions:
    chunk_size: int = 1
    max_retries: int = 0
    task_timeout: float | None = None   # seconds of wall time per task attempt
    result_interval: float = 0.2        # a worker sends finished rows at least this often
    prefetch: bool = True               # keep a second chunk queued on each worker (HPO: only
                                        # for samplers that ignore the history, see run_trials)
    prefetch_limit: int | None = None   # prefetch grows to PREFETCH_SECONDS of short tasks,
                                        # up to this many (None: MAX_PREFETCH)
    hierarchy: str = "flat"             # "flat", "nodes" (a sub-coordinator per node) or "auto"

    @property
    def window(self) -> int:
        """Tasks the coordinator keeps outstanding on each worker."""
        return self.chunk_size * (2 if self.prefetch else 1)


@dataclass
class FarmStats:
    tasks_done: int = 0
    retries: int = 0
    interrupted: bool = False
