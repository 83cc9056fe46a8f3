"""Cost of the store's guards (issue 13): what every reader and writer now pays.

* the validating open (store.reader.open_result: attribute types, the layout of the
  kind, links, declared rows) against a plain h5py open + close of the same file, for a
  100,000-row sweep file and a tempering file with its checkpoint groups;
* a guarded write and flush of 100 rows (ResultStore.write_rows + flush: a free-space
  check and the ENOSPC guard) against the same store with the guard switched off;
* taking the 4 MiB disk-full reserve and the writer lock at start-up, against creating
  the 100,000-row result file they come with.

Medians of repeated in-process runs (the write figures: the best of three interleaved
medians); figures are ratios against the baseline measured in the same run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

N_ROWS = 100_000
REPEAT = 30


def _median(fn, repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _sweep_file(path: Path):
    from hpcopt.mpi.runtime import get_world
    from hpcopt.store import dtypes
    from hpcopt.store.resultfile import ResultStore, TableSpec
    store = ResultStore(get_world(), path, parallel=False)
    store.create(kind="sweep", config_text="[output]\npath = 'x.h5'\n", config_hash="h", seed=0,
                 tables={"tasks": TableSpec(dtypes.sweep_dtype(3), N_ROWS,
                                            {"param_names": ["a", "b", "c"]})})
    return store


def _temper_file(path: Path) -> None:
    """A tempering layout: rounds/samples tables and two checkpoint groups of 24 arrays."""
    from hpcopt.store import schema
    from hpcopt.store.dtypes import round_dtype, sample_dtype
    with h5py.File(path, "w") as f:
        for k, v in {"kind": "temper", "format_version": schema.FORMAT_VERSION, "seed": 1,
                     "world_size": 3, "status": "complete", "config": "a = 1"}.items():
            f.attrs[k] = v
        rounds = np.zeros(10_000, dtype=schema.with_status(round_dtype(8)))
        f.create_dataset("rounds", data=rounds).attrs["n_replicas"] = 8
        f.create_dataset("samples", data=np.zeros(10_000, dtype=sample_dtype((4, 4), "i1")))
        f.create_group("best").attrs["objective"] = -32.0
        for slot in ("a", "b"):
            g = f.create_group(f"checkpoint/{slot}")
            for i in range(24):
                g[f"array_{i}"] = np.zeros(8)


def run() -> dict:
    from hpcopt.mpi.runtime import reset_stop
    from hpcopt.store import dtypes, schema
    from hpcopt.store.lock import acquire_writer_lock
    from hpcopt.store.reader import open_result
    from hpcopt.store.space import SpaceReserve
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        t0 = time.perf_counter()
        store = _sweep_file(d / "sweep.h5")
        create_s = time.perf_counter() - t0
        rows = schema.empty_rows(dtypes.sweep_dtype(3), np.arange(100))
        rows["status"] = schema.OK

        def write():
            store.write_rows("tasks", rows)
            store.flush()
        guarded = [_median(write, 100)]
        reserve, store._write = store.reserve, (lambda op: op())   # the same, unguarded
        unguarded = [_median(write, 100)]
        store._write = type(store)._write.__get__(store)
        for _ in range(2):                # interleaved: load changes on a shared machine
            guarded.append(_median(write, 100))
            store._write, store.reserve = (lambda op: op()), None
            unguarded.append(_median(write, 100))
            store._write, store.reserve = type(store)._write.__get__(store), reserve
        figures["guarded_write_100_rows_us"] = min(guarded) * 1e6
        figures["unguarded_write_100_rows_us"] = min(unguarded) * 1e6
        figures["guarded_over_unguarded_write"] = min(guarded) / min(unguarded)
        store.close("complete")
        reset_stop()
        _temper_file(d / "temper.h5")
        for name in ("sweep", "temper"):
            path = d / f"{name}.h5"
            validated = _median(lambda: open_result(path).close())
            opened = _median(lambda: h5py.File(path, "r", locking=False).close())
            figures[f"{name}_validating_open_ms"] = validated * 1e3
            figures[f"{name}_plain_open_ms"] = opened * 1e3
            figures[f"{name}_validating_over_plain_open"] = validated / opened

        def start_up():
            reserve = SpaceReserve(d / "sweep.h5")
            reserve.take()
            acquire_writer_lock(d / "sweep.h5").release()
            reserve.release()
        figures["reserve_and_lock_ms"] = _median(start_up, 10) * 1e3
        figures["create_100k_row_file_ms"] = create_s * 1e3
        figures["reserve_and_lock_over_create"] = figures["reserve_and_lock_ms"] / (create_s * 1e3)
    return figures
