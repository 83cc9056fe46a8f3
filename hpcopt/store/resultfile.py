"""Create, resume and write hpcopt result files (serial or parallel HDF5).

Two write paths with identical file contents:

* serial h5py (the PyPI wheel): only rank 0 opens the file; other ranks send
  their rows to rank 0;
* MPI-enabled h5py: every rank opens the file with ``driver="mpio"``; file and
  table creation and attribute updates are collective, rows are written
  in place by whichever rank holds them (independent I/O into preallocated
  contiguous tables, so writing rows never touches file metadata).

All methods are called on every rank; ranks without a file handle do nothing.

Every write goes through one guard (``_write``): a nearly full file system, or a
write that fails with ENOSPC/EDQUOT, frees the file's space reserve and stops the
campaign as a stop signal would (checkpoint, status "interrupted", exit 3; see
:mod:`hpcopt.store.space`), instead of ending it with an error and a damaged file.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from .. import __version__
from ..errors import ResultFileError
from . import dtypes, schema
from .layout import VECTORS_ATTR, TableLayout, slice_rows
from .reader import open_result
from .space import LOW_WATER_BYTES, RESERVE_BYTES, SpaceReserve, disk_full, file_system, \
    is_disk_full, reserve_path


log = logging.getLogger("hpcopt")


def slurm_ids() -> dict[str, str]:
    """SLURM job/array ids and node list for the result-file attributes (only those set)."""
    names = {"SLURM_JOB_ID": "slurm_job_id", "SLURM_ARRAY_JOB_ID": "slurm_array_job_id",
             "SLURM_ARRAY_TASK_ID": "slurm_array_task_id", "SLURM_JOB_NODELIST": "slurm_nodelist",
             "SLURM_RESTART_COUNT": "slurm_restart_count"}
    return {attr: os.environ[var] for var, attr in names.items() if os.environ.get(var)}


def h5py_has_mpi() -> bool:
    return bool(h5py.get_config().mpi)


#: buffered rows reach the file at most this long after the previous write (a killed job
#: loses at most this much finished work besides the tasks in flight)
FLUSH_SECONDS = 0.2


class FlushClock:
    """When the rows a campaign buffers on rank 0 are due in the file."""

    def __init__(self):
        self.last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.last >= FLUSH_SECONDS

    def wrote(self) -> None:
        self.last = time.monotonic()


#: rows written per slice when filling or copying tables (bounds memory)
SLICE_ROWS = 65536
#: suffix of a table being extended (see ResultStore.extend_table)
EXTENDING = ".extending"

#: room kept free beyond the tables (attributes, the log file, checkpoints of small campaigns)
MIN_FREE_BYTES = 1 << 20


@dataclass
class TableSpec:
    """A table to allocate: its row dtype, number of rows, and attributes (JSON-able values).

    Vector fields of the row dtype are stored beside the compound table (store.layout):
    as one column per label for the fields in `labels`, as a dataset of their own
    otherwise.  `units`: units of stored columns beyond store.dtypes' (a sweep's
    parameters), for the table's ``columns`` attribute.
    """

    dtype: np.dtype
    n_rows: int
    attrs: dict[str, Any] = field(default_factory=dict)
    growable: bool = False     # chunked and resizable (serial writer only: resizing is metadata)
    labels: dict[str, list[str]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)


def _attr_value(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return value


def check_existing(path: Path, *, kind: str, main_table: str,
                   n_rows: int | None = None) -> tuple[dict, dict]:
    """Validate a file for --resume; return (root attributes, main-table attributes).

    The file goes through the validating open of every reader
    (:func:`hpcopt.store.reader.open_result`): an hpcopt result file of family `kind` (the
    `kind` attribute) that this version can read; its main table must hold the `n_rows`
    tasks of the campaign it records (a growable table grows). Raises ResultFileError.
    """
    if not path.exists():
        raise ResultFileError(f"{path}: --resume given but the result file does not exist")
    with open_result(path, kind=kind) as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        table = f.get(main_table) or f.get(main_table + EXTENDING)   # resume() ends it
        if not isinstance(table, h5py.Dataset):
            raise ResultFileError(f"{path}: has no '{main_table}' table; it may be corrupted")
        table_attrs = {k: (v.decode() if isinstance(v, bytes) else v)
                       for k, v in table.attrs.items()}
        length, growable = table.shape[0], table.maxshape[0] is None
    if n_rows is not None and length < n_rows and not growable:
        raise ResultFileError(f"{path}: table '{main_table}' has {length} rows but the config "
                              f"defines {n_rows} tasks: the file is damaged or was written for "
                              "another campaign")
    _check_room(path, RESERVE_BYTES + LOW_WATER_BYTES)
    return attrs, table_attrs


def _check_room(path: Path, needed: int) -> None:
    """Refuse to start when the output's file system lacks `needed` bytes (plus a stale
    reserve of this result file, which is ours to reuse)."""
    parent = path.parent if str(path.parent) else Path(".")
    stale = reserve_path(path)
    free = shutil.disk_usage(parent).free + (stale.stat().st_size if stale.is_file() else 0)
    if free < needed:
        raise ResultFileError(f"{path}: the file system {file_system(parent)} has "
                              f"{free / 2**20:.1f} MiB free; this campaign needs about "
                              f"{needed / 2**20:.1f} MiB (with {RESERVE_BYTES >> 20} MiB kept to "
                              "checkpoint if the disk fills up): make room and run again")


def directory_problem(directory: Path) -> str | None:
    """Why files cannot be written in `directory` (made if missing), or None if they can."""
    if directory.exists() and not directory.is_dir():
        return f"{directory} is not a directory"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {directory}: {exc}"
    if not os.access(directory, os.W_OK):
        return f"{directory} is not writable"
    return None


def check_new_output(path: Path, *, force: bool, needed_bytes: int = 0) -> None:
    """A new campaign may not overwrite a file unless --force; the directory must be
    writable and have room for the preallocated tables (`needed_bytes`) plus a margin."""
    if path.exists() and not path.is_file():
        raise ResultFileError(f"{path}: exists and is not a regular file (a directory or a "
                              "device): choose another output path")
    if path.exists() and not force:
        raise ResultFileError(f"{path}: result file exists; use --resume to continue it or "
                              "--force to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    problem = directory_problem(parent)
    if problem:
        raise ResultFileError(f"{path}: cannot create output directory: {problem}")
    needed = int(needed_bytes * 1.1) + MIN_FREE_BYTES + RESERVE_BYTES
    _check_room(path, needed - (path.stat().st_size if path.exists() else 0))


class ResultStore:
    """A result file shared by all ranks (see module docstring for the two paths)."""

    def __init__(self, world, path: str | Path, *, parallel: bool | None = None):
        self.world = world
        self.path = Path(path)
        self.parallel = (h5py_has_mpi() and world.size > 1) if parallel is None else parallel
        self.file: h5py.File | None = None
        self.reserve: SpaceReserve | None = None
        self._layouts: dict[str, TableLayout] = {}

    @property
    def holds_file(self) -> bool:
        return self.parallel or self.world.is_root

    def _open(self, mode: str) -> None:
        if not self.holds_file:
            return
        kwargs: dict[str, Any] = {}
        if self.parallel:
            kwargs.update(driver="mpio", comm=self.world.comm)
        else:
            kwargs.update(locking=False)  # readers (hpcopt report) may look while we write
        if self.world.is_root:
            self._take_reserve()
        self.file = h5py.File(self.path, mode, **kwargs)

    # -- a full file system (see the module docstring) ---------------------------------
    def _take_reserve(self) -> None:
        reserve = SpaceReserve(self.path)
        try:
            reserve.take()
        except ResultFileError as exc:   # the start-up check saw room: lost to a race
            log.warning(f"{exc}; continuing without a checkpoint reserve")
            return
        self.reserve = reserve

    def _write(self, op: Callable[[], Any]) -> Any:
        """Run a write; a full file system becomes a stop request (reserve freed, the write
        tried once more with the room it gave)."""
        if self.reserve is not None and self.reserve.held and self.reserve.low():
            disk_full(self.path)
        try:
            return op()
        except (OSError, RuntimeError) as exc:
            if not is_disk_full(exc):
                raise
            disk_full(self.path, exc)
            return op()

    # -- lifecycle ------------------------------------------------------------------
    def create(self, *, kind: str, config_text: str, config_hash: str, seed: int,
               tables: dict[str, TableSpec], attrs: dict[str, Any] | None = None,
               groups: tuple[str, ...] = ("best",),
               arrays: dict[str, np.ndarray] | None = None) -> None:
        """Create the file (collectively), allocate every table and group, status 'running'.

        Everything that changes file metadata happens here and is flushed at once: later
        writes only fill rows, so a job killed at any point leaves a complete layout.
        """
        self._open("w")
        if self.file is None:
            return
        f = self.file
        root = {schema.ATTR_KIND: kind, schema.ATTR_STATUS: "running",
                schema.ATTR_CONFIG: config_text, schema.ATTR_CONFIG_HASH: config_hash,
                schema.ATTR_VERSION: __version__, schema.ATTR_FORMAT: schema.FORMAT_VERSION,
                schema.ATTR_CREATED: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                schema.ATTR_WORLD: self.world.size, schema.ATTR_SEED: seed,
                schema.ATTR_HOST: socket.gethostname(), **slurm_ids(), **(attrs or {})}
        for k, v in root.items():
            f.attrs[k] = _attr_value(v)
        for name, spec in tables.items():
            if spec.growable and self.parallel:
                raise ValueError(f"table {name!r}: growable tables need the serial writer")
            layout = TableLayout.plan(name, spec.dtype, spec.labels)
            ds = _new_dataset(f, name, (spec.n_rows,), layout.stored_dtype, spec.growable)
            docs = dtypes.column_docs(name, layout, spec.units)
            for v in layout.side_datasets:     # a vector beside the table, a row per row
                side = _new_dataset(f, v.dataset, (spec.n_rows, *v.shape), v.base,
                                    spec.growable)
                side.attrs.update({"table": name, "unit": docs[v.field]["unit"],
                                   "description": docs[v.field]["description"]})
            for k, v in spec.attrs.items():
                ds.attrs[k] = _attr_value(v)
            if layout.split:
                ds.attrs[VECTORS_ATTR] = layout.attr()
            ds.attrs[dtypes.COLUMNS_ATTR] = dtypes.columns_attr(docs)
            self._layouts[name] = layout
            # pending rows with their task ids, written in slices to bound memory
            self._fill_pending(name, *self._my_rows(spec.n_rows))
        for name in groups:
            f.create_group(name)
        for name, value in (arrays or {}).items():   # fixed-shape datasets overwritten in place
            f.create_dataset(name, data=value)
        f.flush()

    def resume(self, *, world_size: int) -> None:
        """Reopen an existing file (validated beforehand) and mark it running again."""
        self._open("r+")
        if self.file is None:
            return
        self._layouts.clear()
        for name in [n for n in self.file if n.endswith(EXTENDING)]:
            table = name[:-len(EXTENDING)]    # an extension killed between its last two steps
            if table in self.file:            # (each dataset: copy, delete, rename)
                del self.file[name]
            else:
                self.file.move(name, table)
        self._read_layouts()
        n = int(self.file.attrs.get("resumes", 0)) + 1
        self.set_attrs("/", {schema.ATTR_STATUS: "running", schema.ATTR_WORLD: world_size,
                             "resumes": n})
        self.flush()

    def close(self, status: str) -> None:
        """Trim growable tables to their written rows, write the final status and close;
        then the space reserve goes."""
        if self.file is None:
            return
        self._trim_growable()
        self.set_attrs("/", {schema.ATTR_STATUS: status})
        self._write(self.file.close)
        self.file = None
        if self.reserve is not None:
            self.reserve.release()

    # -- rows -----------------------------------------------------------------------
    def layout(self, table: str) -> TableLayout:
        """How `table`'s rows are stored (store.layout); its row dtype is what
        :meth:`read_rows` returns and :meth:`write_rows` takes."""
        layout = self._layouts.get(table)
        if layout is None:
            layout = self._layouts[table] = TableLayout.of(self.file[table])
        return layout

    def _read_layouts(self) -> None:
        """Every table's layout, read now by every rank together.  With parallel HDF5 a
        rank that reads a table's attributes alone after a collective attribute write (the
        writing rank looking up `vectors` for its first rows) puts the ranks' metadata
        caches out of step, and the collective close then waits for ever (MPICH 4.0 with
        HDF5 1.10: tests/store/test_mpio_paths.py)."""
        for name, obj in self.file.items():
            if isinstance(obj, h5py.Dataset) and obj.dtype.names:
                self.layout(name)

    def read_column(self, table: str, column: str) -> np.ndarray | None:
        if self.file is None:
            return None
        return self.layout(table).read_column(self.file[table], column)

    def read_rows(self, table: str, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        """Rows of the row dtype (vectors joined back, see store.layout)."""
        if self.file is None:
            return None
        ds = self.file[table]
        return self.layout(table).read(ds, start, ds.shape[0] if stop is None else stop)

    def write_rows(self, table: str, rows: np.ndarray, positions: np.ndarray | None = None) -> None:
        """Write rows in place: at their task ids, or at `positions` (independent I/O).

        `rows` of the table's row dtype, or of another layout of it (a format-1 file
        resumed): they are copied into the file's own by column name.  A rank writes its
        rows' vectors (side datasets) too.
        """
        if len(rows) == 0:
            return
        if self.file is None:
            raise RuntimeError(f"rank {self.world.rank} holds no file handle to write rows")
        layout = self.layout(table)
        rows = layout.conform(rows)
        ds = self.file[table]
        ids = rows["task_id"] if positions is None else np.asarray(positions, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        rows, ids = rows[order], ids[order]
        if ids[-1] >= ds.shape[0]:       # a growable table: double it (rare, serial only)
            self._write(lambda: self._grow(table, int(ids[-1]) + 1))
        comp, sides = layout.to_stored(rows)
        if ids[-1] - ids[0] + 1 == len(ids):  # one contiguous block: a single slice write
            self._write_block(ds, comp, sides, int(ids[0]), 0, len(ids))
        else:
            for lo, hi in _runs(ids):
                self._write_block(ds, comp, sides, int(ids[lo]), lo, hi)

    def _write_block(self, ds: h5py.Dataset, comp: np.ndarray, sides: dict[str, np.ndarray],
                     at: int, lo: int, hi: int, guard: bool = True) -> None:
        """Rows lo..hi of the split rows at table rows at..at + (hi - lo) (`guard`: through
        the full-disk guard; not while the layout is being made)."""
        write = self._write if guard else (lambda op: op())
        block = slice(at, at + (hi - lo))
        write(lambda: ds.__setitem__(block, comp[lo:hi]))
        for name, values in sides.items():
            side = self.file[name]
            write(lambda: side.__setitem__(block, values[lo:hi]))

    def _datasets(self, table: str) -> list[str]:
        """The table and its side datasets."""
        return [table] + [v.dataset for v in self.layout(table).side_datasets]

    def _grow(self, table: str, n_rows: int) -> None:
        old = self.file[table].shape[0]
        if old >= n_rows:                # grown already (a retried write)
            return
        for name in self._datasets(table):
            d = self.file[name]
            d.resize((max(n_rows, 2 * old),) + d.shape[1:])
        self._fill_pending(table, old, self.file[table].shape[0])

    def flush(self) -> None:
        """Make written rows durable for readers (serial path; mpio writes go straight out)."""
        if self.file is not None and not self.parallel:
            self._write(self.file.flush)

    def trim(self, table: str, n_rows: int) -> None:
        """Cut a growable table (and its side datasets) to its first `n_rows` rows (serial
        writer, at the end)."""
        if self.file is None or self.file[table].shape[0] <= n_rows:
            return
        for name in self._datasets(table):
            d = self.file[name]
            self._write(lambda: d.resize((n_rows,) + d.shape[1:]))

    def _trim_growable(self) -> None:
        """Growable tables (rows not known ahead, e.g. HPO trials) lose their pending tail:
        a finished file holds no placeholder rows after its last written row."""
        for name, obj in list(self.file.items()):
            if not (isinstance(obj, h5py.Dataset) and obj.dtype.names and obj.maxshape[0] is None
                    and "status" in obj.dtype.names and obj.shape[0]):
                continue
            status = obj.fields("status")[:]
            written = np.flatnonzero(status != schema.PENDING)
            self.trim(name, int(written[-1]) + 1 if len(written) else 0)

    def extend_table(self, table: str, n_rows: int) -> None:
        """Grow a table to `n_rows` pending rows at start-up (a campaign extended on
        --resume; collective in parallel mode). Rows already there stay as they are.

        A growable table is resized; a fixed one is copied into a new dataset that then
        takes its name, its side datasets first (a reader tolerates side datasets longer
        than their table), each dataset on its own, so that an extension killed half-way
        is completed by the next one. Only metadata changes, before any row of this run
        is written.
        """
        if self.file is None:
            return
        f, ds = self.file, self.file[table]
        names = self._datasets(table)
        old = ds.shape[0]
        if all(f[n].shape[0] >= n_rows for n in names):
            return
        if ds.maxshape[0] is None:
            for name in names:
                f[name].resize((n_rows,) + f[name].shape[1:])
            self._fill_pending(table, old, n_rows)
            f.flush()
            return
        lo, hi = self._my_rows(n_rows)
        for name in names[1:] + names[:1]:
            src = f[name]
            if src.shape[0] >= n_rows:
                continue
            have = src.shape[0]
            tmp = f"{name}{EXTENDING}"
            if tmp in f:                     # left by an extension killed before
                del f[tmp]
            new = f.create_dataset(tmp, shape=(n_rows,) + src.shape[1:], dtype=src.dtype)
            for k, v in src.attrs.items():
                new.attrs[k] = v
            step = slice_rows(src.dtype) if src.ndim == 1 else max(
                1, slice_rows(np.dtype((src.dtype, src.shape[1:]))))
            for a in range(lo, min(hi, have), step):
                b = min(a + step, hi, have)
                new[a:b] = src[a:b]
            f.flush()
            del f[name]
            f.move(tmp, name)
        self._layouts.pop(table, None)
        self._fill_pending(table, max(lo, old), hi)
        f.flush()

    def _my_rows(self, n_rows: int) -> tuple[int, int]:
        if not self.parallel:
            return 0, n_rows
        from ..partition import rank_range
        return rank_range(n_rows, self.world.size, self.world.rank)

    def _fill_pending(self, table: str, lo: int, hi: int) -> None:
        """Pending rows (task ids filled in) at rows lo..hi of `table` and its side datasets,
        in slices of bounded size."""
        layout = self.layout(table)
        ds = self.file[table]
        step = slice_rows(layout.row_dtype)
        for a in range(lo, hi, step):
            b = min(a + step, hi)
            comp, sides = layout.to_stored(schema.empty_rows(layout.row_dtype, np.arange(a, b)))
            self._write_block(ds, comp, sides, a, 0, b - a, guard=False)

    def write_array(self, name: str, value: np.ndarray) -> None:
        """Overwrite a dataset made by create(arrays=...) (same shape: no metadata change)."""
        if self.file is not None:
            self._write(lambda: self.file[name].__setitem__(Ellipsis, value))

    def read_array(self, name: str) -> np.ndarray | None:
        return None if self.file is None else self.file[name][()]

    def del_attr(self, obj: str, name: str) -> None:
        """Remove an attribute of '/' or a group/table if it is there (collective)."""
        if self.file is None:
            return
        target = self.file[obj] if obj != "/" else self.file
        if name in target.attrs:
            del target.attrs[name]

    def set_attrs(self, obj: str, attrs: dict[str, Any]) -> None:
        """Set attributes of '/' or a group/table (collective in parallel mode)."""
        if self.file is None:
            return
        target = self.file[obj] if obj != "/" else self.file
        for k, v in attrs.items():
            self._write(lambda: target.attrs.__setitem__(k, _attr_value(v)))



def _new_dataset(f: h5py.File, name: str, shape: tuple, dtype, growable: bool) -> h5py.Dataset:
    """A preallocated dataset; growable: chunked and resizable along its rows."""
    if growable:
        return f.create_dataset(name, shape=shape, dtype=dtype, chunks=True,
                                maxshape=(None,) + tuple(shape[1:]))
    return f.create_dataset(name, shape=shape, dtype=dtype)


def _runs(ids: np.ndarray):
    """(lo, hi) index ranges of consecutive task ids in a sorted array."""
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    edges = np.concatenate(([0], breaks, [len(ids)]))
    for lo, hi in zip(edges[:-1], edges[1:]):
        yield int(lo), int(hi)
