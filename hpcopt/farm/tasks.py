"""What travels through the farm: tasks, outcomes, the two roles' contracts, options."""

from __future__ import annotations

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


class Evaluator(Protocol):
    """The worker-side role: a task in, an outcome out.  Optional extras the farm uses
    when present: ``prepare(task_ids)`` (called with the ids of each batch a worker
    receives, before any of them is evaluated: lets an evaluator compute per-batch
    inputs at once) and ``close()`` (called when the farm ends)."""

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

    def __getstate__(self):
        return (self.ids, self.attempts, self.avoid, self.payloads)

    def __setstate__(self, state):
        self.ids, self.attempts, self.avoid, self.payloads = state


@dataclass
class FarmOptions:
    chunk_size: int = 1
    max_retries: int = 0
    task_timeout: float | None = None   # seconds of wall time per task attempt
    result_interval: float = 0.2        # a worker sends finished rows at least this often
    prefetch: bool = True               # keep a second chunk queued on each worker (not for HPO:
                                        # a trial sent is a trial started, the sampler decides late)
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
