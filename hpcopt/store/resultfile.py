"""Create, resume and write hpcopt result files (serial or parallel HDF5).

Two write paths with identical file contents:

* serial h5py (the PyPI wheel): only rank 0 opens the file; other ranks send
  their rows to rank 0;
* MPI-enabled h5py: every rank opens the file with ``driver="mpio"``; file and
  table creation and attribute updates are collective, rows are written
  in place by whichever rank holds them (independent I/O into preallocated
  contiguous tables, so writing rows never touches file metadata).

All methods are called on every rank; ranks without a file handle do nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .. import __version__
from ..errors import ResultFileError
from ..slurm import slurm_ids
from . import schema


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
    """A table to allocate: dtype, number of rows, and attributes (JSON-able values)."""

    dtype: np.dtype
    n_rows: int
    attrs: dict[str, Any] = field(default_factory=dict)
    growable: bool = False     # chunked and resizable (serial writer only: resizing is metadata)


def _attr_value(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return value


def check_existing(path: Path, *, kind: str, main_table: str) -> tuple[dict, dict]:
    """Validate a file for --resume: an hpcopt result file of family `kind` (the `kind`
    attribute) that this version can read, with its main table; return (root attributes,
    main-table attributes). Raises ResultFileError (exit 2)."""
    if not path.exists():
        raise ResultFileError(f"{path}: --resume given but the result file does not exist")
    try:
        with h5py.File(path, "r", locking=False) as f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            table = f.get(main_table) or f.get(main_table + EXTENDING)   # resume() finishes it
            table_attrs = ({k: (v.decode() if isinstance(v, bytes) else v)
                            for k, v in table.attrs.items()}
                           if isinstance(table, h5py.Dataset) else None)
    except OSError as exc:
        raise ResultFileError(f"{path}: not a readable HDF5 file ({exc}); it may be truncated "
                              "or corrupted") from None
    if schema.ATTR_KIND not in attrs or schema.ATTR_FORMAT not in attrs:
        raise ResultFileError(f"{path}: not an hpcopt result file (no '{schema.ATTR_KIND}' or "
                              f"'{schema.ATTR_FORMAT}' attribute)")
    if int(attrs[schema.ATTR_FORMAT]) > schema.FORMAT_VERSION:
        raise ResultFileError(
            f"{path}: written by a newer hpcopt ({attrs.get(schema.ATTR_VERSION)}, format "
            f"{attrs[schema.ATTR_FORMAT]}); this is hpcopt {__version__} (format "
            f"{schema.FORMAT_VERSION}): upgrade hpcopt to resume it")
    if attrs[schema.ATTR_KIND] != kind:
        raise ResultFileError(f"{path}: holds a {attrs[schema.ATTR_KIND]!r} campaign, not {kind!r}")
    if table_attrs is None:
        raise ResultFileError(f"{path}: has no '{main_table}' table; it may be corrupted")
    return attrs, table_attrs


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
    needed = int(needed_bytes * 1.1) + MIN_FREE_BYTES
    free = shutil.disk_usage(parent).free + (path.stat().st_size if path.exists() else 0)
    if free < needed:
        raise ResultFileError(f"{path}: the result file needs about {needed / 2**20:.1f} MiB "
                              f"but {parent} has {free / 2**20:.1f} MiB free")


class ResultStore:
    """A result file shared by all ranks (see module docstring for the two paths)."""

    def __init__(self, world, path: str | Path, *, parallel: bool | None = None):
        self.world = world
        self.path = Path(path)
        self.parallel = (h5py_has_mpi() and world.size > 1) if parallel is None else parallel
        self.file: h5py.File | None = None

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
        self.file = h5py.File(self.path, mode, **kwargs)

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
            ds = (f.create_dataset(name, shape=(spec.n_rows,), dtype=spec.dtype, chunks=True,
                                   maxshape=(None,)) if spec.growable else
                  f.create_dataset(name, shape=(spec.n_rows,), dtype=spec.dtype))
            for k, v in spec.attrs.items():
                ds.attrs[k] = _attr_value(v)
            # pending rows with their task ids, written in slices to bound memory
            self._fill_pending(ds, *self._my_rows(spec.n_rows))
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
        for name in [n for n in self.file if n.endswith(EXTENDING)]:
            table = name[:-len(EXTENDING)]    # an extension killed between its last two steps
            if table in self.file:
                del self.file[name]
            else:
                self.file.move(name, table)
        self.file.attrs[schema.ATTR_STATUS] = "running"
        self.file.attrs[schema.ATTR_WORLD] = world_size
        n = int(self.file.attrs.get("resumes", 0)) + 1
        self.file.attrs["resumes"] = n
        self.file.flush()

    def close(self, status: str) -> None:
        if self.file is None:
            return
        self.file.attrs[schema.ATTR_STATUS] = status
        self.file.close()
        self.file = None

    # -- rows -----------------------------------------------------------------------
    def read_column(self, table: str, column: str) -> np.ndarray | None:
        if self.file is None:
            return None
        return self.file[table].fields(column)[:]

    def read_rows(self, table: str, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        if self.file is None:
            return None
        return self.file[table][start:stop]

    def write_rows(self, table: str, rows: np.ndarray, positions: np.ndarray | None = None) -> None:
        """Write rows in place: at their task ids, or at `positions` (independent I/O)."""
        if len(rows) == 0:
            return
        if self.file is None:
            raise RuntimeError(f"rank {self.world.rank} holds no file handle to write rows")
        ds = self.file[table]
        ids = rows["task_id"] if positions is None else np.asarray(positions, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        rows, ids = rows[order], ids[order]
        if ids[-1] >= ds.shape[0]:       # a growable table: double it (rare, serial only)
            old = ds.shape[0]
            ds.resize((max(int(ids[-1]) + 1, 2 * old),))
            self._fill_pending(ds, old, ds.shape[0])
        if ids[-1] - ids[0] + 1 == len(ids):  # one contiguous block: a single slice write
            ds[int(ids[0]):int(ids[-1]) + 1] = rows
        else:
            for lo, hi in _runs(ids):
                ds[int(ids[lo]):int(ids[lo]) + (hi - lo)] = rows[lo:hi]

    def flush(self) -> None:
        """Make written rows durable for readers (serial path; mpio writes go straight out)."""
        if self.file is not None and not self.parallel:
            self.file.flush()

    def trim(self, table: str, n_rows: int) -> None:
        """Cut a growable table to its first `n_rows` rows (serial writer, at the end)."""
        if self.file is not None and self.file[table].shape[0] > n_rows:
            self.file[table].resize((n_rows,))

    def extend_table(self, table: str, n_rows: int) -> None:
        """Grow a table to `n_rows` pending rows at start-up (a campaign extended on
        --resume; collective in parallel mode). Rows already there stay as they are.

        A growable table is resized; a fixed one is copied into a new dataset that then
        takes its name. Only metadata changes, before any row of this run is written.
        """
        if self.file is None or self.file[table].shape[0] >= n_rows:
            return
        f, ds = self.file, self.file[table]
        old = ds.shape[0]
        if ds.maxshape[0] is None:
            ds.resize((n_rows,))
            self._fill_pending(ds, old, n_rows)
        else:
            tmp = f"{table}{EXTENDING}"
            new = f.create_dataset(tmp, shape=(n_rows,), dtype=ds.dtype)
            for k, v in ds.attrs.items():
                new.attrs[k] = v
            lo, hi = self._my_rows(n_rows)
            for a in range(lo, min(hi, old), SLICE_ROWS):
                b = min(a + SLICE_ROWS, hi, old)
                new[a:b] = ds[a:b]
            self._fill_pending(new, max(lo, old), hi)
            f.flush()
            del f[table]
            f.move(tmp, table)
        f.flush()

    def _my_rows(self, n_rows: int) -> tuple[int, int]:
        if not self.parallel:
            return 0, n_rows
        from ..partition import rank_range
        return rank_range(n_rows, self.world.size, self.world.rank)

    def _fill_pending(self, ds, lo: int, hi: int) -> None:
        for a in range(lo, hi, SLICE_ROWS):
            b = min(a + SLICE_ROWS, hi)
            ds[a:b] = schema.empty_rows(ds.dtype, np.arange(a, b))

    def write_array(self, name: str, value: np.ndarray) -> None:
        """Overwrite a dataset made by create(arrays=...) (same shape: no metadata change)."""
        if self.file is not None:
            self.file[name][...] = value

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
            target.attrs[k] = _attr_value(v)



def _runs(ids: np.ndarray):
    """(lo, hi) index ranges of consecutive task ids in a sorted array."""
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    edges = np.concatenate(([0], breaks, [len(ids)]))
    for lo, hi in zip(edges[:-1], edges[1:]):
        yield int(lo), int(hi)
