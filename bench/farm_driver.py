"""The task farm alone under mpiexec: empty tasks, no result file (bench_farm_scaling).

    mpiexec -n N python farm_driver.py N_TASKS CHUNK HIERARCHY [FILE]

Rank 0 prints one JSON line: wall seconds of the farm, tasks/s, every rank's CPU seconds
(rank 0's is its service time: what one coordinator costs per task when it has a core of
its own; a sub-coordinator's, what it costs per task of its node) and the messages rank 0
received.  With FILE, rank 0 writes the rows into a sweep result file the way a sweep
does (hpcopt.sweep.engine.SweepSource), so its cost includes HDF5.  HPCOPT_NODE_SIZE
groups ranks into pretend nodes.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from hpcopt.farm import FarmOptions, Outcome, TaskBatch, run_dynamic
from hpcopt.mpi.runtime import get_world
from hpcopt.mpi.transport import MpiTransport
from hpcopt.store import schema

DTYPE = np.dtype(schema.common_columns() + [("x0", "<f8", (1,)), ("objective", "<f8")])


class Source:
    def __init__(self, n: int):
        self.n, self.i, self.done = n, 0, 0
        self.ranks: list[np.ndarray] = []

    def next_tasks(self, k: int) -> TaskBatch:
        ids = np.arange(self.i, min(self.n, self.i + k))
        self.i += len(ids)
        return TaskBatch(ids)

    def next_task(self):
        batch = self.next_tasks(1)
        return batch.task(0) if len(batch) else None

    def exhausted(self) -> bool:
        return self.i >= self.n

    def on_results(self, rows) -> None:
        self.done += len(rows)
        self.ranks.append(rows["rank"].copy())

    def on_report(self, task_id, step, value) -> bool:
        return False


class Empty:
    def inputs(self, task) -> dict:
        return {}

    def evaluate(self, task, report) -> Outcome:
        return Outcome(schema.OK, {"objective": 0.0})


class Counting(MpiTransport):
    received = 0

    def poll(self, source=-1, tag=-1):
        got = super().poll(source, tag)
        if got is not None:
            self.received += 1
        return got


def file_source(world, path: str, n: int):
    """The rank-0 row sink of a sweep, on a fresh result file."""
    from hpcopt.progress import Progress
    from hpcopt.store.resultfile import ResultStore, TableSpec
    from hpcopt.sweep.engine import TABLE, SweepSource
    store = ResultStore(world, path, parallel=False)
    store.create(kind="sweep", config_text="", config_hash="bench", seed=0,
                 tables={TABLE: TableSpec(DTYPE, n, {})}, attrs={})
    return store, SweepSource(store, DTYPE, np.arange(n), Progress(n, label="bench", quiet=True),
                              0)


def main(argv: list[str]) -> None:
    n, chunk, hierarchy = int(argv[0]), int(argv[1]), argv[2]
    path = argv[3] if len(argv) > 3 else None
    world = get_world()
    transport = Counting(world.comm)
    store = None
    if world.is_root:
        store, source = file_source(world, path, n) if path else (None, Source(n))
    else:
        source = None
    world.barrier()
    t0, c0 = time.perf_counter(), time.process_time()
    run_dynamic(transport, source=source, evaluator=Empty(), dtype=DTYPE,
                options=FarmOptions(chunk_size=chunk, hierarchy=hierarchy))
    if store is not None:
        source.write()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    cpus = world.gather(cpu)
    if world.is_root:
        if store is not None:
            done = int((store.read_column("tasks", "status") == schema.OK).sum())
            ranks = store.read_column("tasks", "rank")
            store.close("complete")
        else:
            done, ranks = source.done, np.concatenate(source.ranks)
        assert done == n, (done, n)
        print(json.dumps({"ranks": world.size, "tasks": n, "chunk": chunk,
                          "hierarchy": hierarchy, "file": bool(path), "wall_s": wall,
                          "tasks_per_s": n / wall, "rank0_cpu_s": cpu, "cpu_s": cpus,
                          "tasks_by_rank": np.bincount(ranks, minlength=world.size).tolist(),
                          "rank0_messages": transport.received}))


if __name__ == "__main__":
    main(sys.argv[1:])
