"""In-process farm runs: W simulated ranks (threads) over hpcopt.mpi.transport.ThreadedNetwork."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hpcopt.farm import (FarmOptions, LocalStop, ManyOutcome, Outcome, Task, TaskBatch, run_dynamic,
                         run_static)
from hpcopt.mpi import tags
from hpcopt.mpi.transport import ThreadedNetwork, ThreadedTransport
from hpcopt.store import schema

DTYPE = np.dtype(schema.common_columns() + [("x0", "<f8"), ("objective", "<f8")])


class ListSource:
    """Tasks 0..n-1 in order (or `ids`); records rows and reports; optional hooks."""

    def __init__(self, n: int, *, batches: bool = True, prune: Callable | None = None,
                 on_rows: Callable | None = None):
        self.ids = list(range(n))
        self.i = 0
        self.rows: list[np.ndarray] = []
        self.reports: list[tuple] = []
        self.prune = prune
        self.on_rows = on_rows
        if not batches:                      # exercise the per-task path of the protocol
            self.next_tasks = None

    def next_tasks(self, n: int) -> TaskBatch:
        ids = self.ids[self.i:self.i + n]
        self.i += len(ids)
        return TaskBatch(ids)

    def next_task(self) -> Task | None:
        if self.i >= len(self.ids):
            return None
        self.i += 1
        return Task(self.ids[self.i - 1], payload={"n": self.ids[self.i - 1]})

    def exhausted(self) -> bool:
        return self.i >= len(self.ids)

    def on_results(self, rows: np.ndarray) -> None:
        self.rows.append(rows.copy())
        if self.on_rows is not None:
            self.on_rows(self)

    def on_report(self, task_id: int, step: int, value: float) -> bool:
        self.reports.append((task_id, step, value))
        return bool(self.prune and self.prune(task_id, step, value))

    @property
    def all_rows(self) -> np.ndarray:
        return np.concatenate(self.rows) if self.rows else np.zeros(0, DTYPE)


class Evaluator:
    """objective = task id; `behave(task, rank, report)` may raise, sleep or return an Outcome."""

    def __init__(self, rank: int, behave: Callable | None = None, stop: LocalStop | None = None):
        self.rank, self.behave, self.stop = rank, behave, stop
        self.evaluated: list[int] = []

    def inputs(self, task: Task) -> dict:
        return {"x0": float(task.task_id)}

    def evaluate(self, task: Task, report) -> Outcome:
        self.evaluated.append(task.task_id)
        if self.behave is not None:
            out = self.behave(task, self, report)
            if out is not None:
                return out
        return Outcome(schema.OK, {"x0": float(task.task_id), "objective": float(task.task_id)})


class BatchEvaluator(Evaluator):
    """The same tasks through evaluate_many (the farm's fast path): one loop per chunk."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []          # sizes of the evaluate_many calls

    def evaluate_many(self, task_ids: np.ndarray) -> ManyOutcome:
        self.batches.append(len(task_ids))
        status, objective, times, messages, error = [], [], [time.time()], {}, None
        for i, tid in enumerate(task_ids.tolist()):
            try:
                out = self.evaluate(Task(tid), lambda step, value: False)
            except BaseException as exc:  # noqa: BLE001 - handed back to the farm
                error = exc
                break
            status.append(out.status)
            objective.append(out.values.get("objective", math.nan))
            times.append(time.time())
            if out.message:
                messages[i] = out.message
        n = len(status)
        return ManyOutcome(n, np.array(status, dtype=np.int8),
                           {"x0": task_ids[:n].astype(float), "objective": np.array(objective)},
                           messages, np.array(times[:-1]), np.diff(times), error)


@dataclass
class FarmRun:
    source: ListSource
    stats: list
    evaluators: list[Evaluator]
    stops: list[LocalStop]
    network: ThreadedNetwork
    received_by_root: int = 0
    tasks_sent: list[tuple[int, int]] = field(default_factory=list)   # (dest, n) from rank 0

    @property
    def rows(self) -> np.ndarray:
        return self.source.all_rows


class SpyTransport(ThreadedTransport):
    """Rank 0's end, counting what it receives and the TASKS it sends."""

    def __init__(self, network, rank, run: FarmRun):
        super().__init__(network, rank)
        self.run = run
        self.lock = threading.Lock()

    def send(self, obj, dest, tag):
        if tag == tags.TASKS:
            self.run.tasks_sent.append((dest, len(obj)))
        super().send(obj, dest, tag)

    def recv(self, source=-1, tag=-1, timeout=None):
        got = super().recv(source, tag, timeout)
        if got is not None:
            self.run.received_by_root += 1
        return got

    def poll(self, source=-1, tag=-1):
        got = super().poll(source, tag)
        if got is not None:
            self.run.received_by_root += 1
        return got


def run_farm(size: int, n_tasks: int = 40, *, options: FarmOptions | None = None,
             behave: Callable | None = None, node_size: int | None = None,
             source: ListSource | None = None, start_delay: dict[int, float] | None = None,
             stops: list[LocalStop] | None = None, batch: bool = False,
             timeout: float = 30.0) -> FarmRun:
    """Dynamic mode on `size` simulated ranks; rank r starts after start_delay[r] seconds;
    `stops`: each rank's stop flag (default: fresh ones)."""
    options = options or FarmOptions(chunk_size=2)
    source = source or ListSource(n_tasks)
    network = ThreadedNetwork(size, node_size=node_size, timeout=timeout)
    stops = stops if stops is not None else [LocalStop() for _ in range(size)]
    kind = BatchEvaluator if batch else Evaluator
    evaluators = [kind(r, behave, stops[r]) for r in range(size)]
    run = FarmRun(source, [None] * size, evaluators, stops, network)

    def main(rank: int):
        if start_delay and rank in start_delay:
            time.sleep(start_delay[rank])
        transport = SpyTransport(network, 0, run) if rank == 0 else network.transport(rank)
        return run_dynamic(transport, source=source if rank == 0 else None,
                           evaluator=evaluators[rank], dtype=DTYPE, options=options,
                           stop=stops[rank])

    results, errors = [None] * size, [None] * size

    def thread(rank):
        try:
            results[rank] = main(rank)
        except BaseException as exc:  # noqa: BLE001
            errors[rank] = exc
            network.close()

    threads = [threading.Thread(target=thread, args=(r,), daemon=True) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    run.stats = results
    return run


def run_static_farm(size: int, n_tasks: int, *, options: FarmOptions, behave=None,
                    done: np.ndarray | None = None, batch: bool = False,
                    timeout: float = 30.0):
    """Static mode on `size` simulated ranks; returns (rows written by rank 0, stats, stops,
    evaluators)."""
    network = ThreadedNetwork(size, timeout=timeout)
    stops = [LocalStop() for _ in range(size)]
    evaluators = [(BatchEvaluator if batch else Evaluator)(r, behave, stops[r])
                  for r in range(size)]
    written: list[np.ndarray] = []
    done = np.zeros(n_tasks, bool) if done is None else done

    def main(transport):
        return run_static(transport, n_tasks=n_tasks, done=done,
                          evaluator=evaluators[transport.rank], dtype=DTYPE, options=options,
                          write_rows=written.append, parallel_write=False,
                          stop=stops[transport.rank])

    stats = network.run(main)
    rows = np.concatenate(written) if written else np.zeros(0, DTYPE)
    return rows, stats, stops, evaluators
