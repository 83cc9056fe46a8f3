"""The fit history: one HDF5 file of completed fits, the training data of warm starts.

Layout (readable with plain h5py or ``h5dump``, no hpcopt import): root attrs
``format = "hpcopt-warmstart-history"`` and ``format_version``; one compound
dataset ``fits`` with a row per fit::

    record_id  i8     unique, increasing
    timestamp  str    ISO 8601, UTC
    model      str    "xpcs:homodyne", "nist:Misra1a", "pkg.mod:f", ...
    params     str    JSON object {name: best value}
    conditions str    JSON object {name: value}: temperature, concentration, q, ...
    chi2       f8     best chi2 (or objective)
    chi2_reduced f8   nan when unknown
    source     str    result file (or anything naming where the fit came from)
    source_created str  that file's `created` attr (with source: no fit is recorded twice)

Appends are safe with many writers (several jobs finishing at once): a writer holds
an exclusive POSIX lock on ``<history>.lock`` and replaces the file atomically
(write a temporary copy, fsync, rename), so readers never need the lock and never
see a half-written file.  The file is small (a row per fit), so rewriting it is cheap.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import h5py
import numpy as np

from ..errors import DataError
from ..store.dtypes import HISTORY_DTYPE

FORMAT = "hpcopt-warmstart-history"
FORMAT_VERSION = 1
TABLE = "fits"
LOCK_TIMEOUT = 120.0   # seconds a writer waits for another one
_THREAD_LOCK = threading.Lock()   # POSIX record locks exclude processes, not threads
_STR = h5py.string_dtype("utf-8")
DTYPE = HISTORY_DTYPE


@dataclass(frozen=True)
class History:
    """The fits of one model as arrays (rows in record order)."""

    model: str
    param_names: tuple[str, ...]
    condition_names: tuple[str, ...]   # numeric conditions seen in any record (sorted)
    params: np.ndarray                 # (n, n_params), columns in param_names order
    conditions: np.ndarray             # (n, n_conditions), nan where a record lacks one
    chi2: np.ndarray
    chi2_reduced: np.ndarray
    record_ids: np.ndarray
    timestamps: tuple[str, ...]
    sources: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.params.shape[0])


# --------------------------------------------------------------------------- writing
def add_fit(history_path: str | Path, model: str, param_names: Sequence[str],
            conditions: Mapping[str, Any], best_params: Sequence[float], chi2: float, *,
            chi2_reduced: float = math.nan, source: str = "", source_created: str = "",
            timestamp: str | None = None) -> int:
    """Append one completed fit; return its record id.

    `conditions`: named scalars (numbers are the predictor's inputs; strings are kept
    as a record only).  A fit already recorded from the same (`source`,
    `source_created`) is not added again: its id is returned.
    """
    names = [str(n) for n in param_names]
    values = np.asarray(best_params, dtype=np.float64).ravel()
    if len(names) != len(values) or len(set(names)) != len(names):
        raise ValueError(f"{len(values)} best parameters for {len(names)} distinct names {names}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"best parameters must be finite, got {values.tolist()}")
    if not math.isfinite(float(chi2)):
        raise ValueError(f"chi2 must be finite to record a fit, got {chi2!r}")
    row = {"timestamp": timestamp or _now(), "model": str(model),
           "params": json.dumps(dict(zip(names, values.tolist()))),
           "conditions": json.dumps(clean_conditions(conditions)),
           "chi2": float(chi2), "chi2_reduced": float(chi2_reduced),
           "source": str(source), "source_created": str(source_created)}
    path = Path(history_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the history's directory: {exc}", path=str(path)) from None
    with _write_lock(path):
        rows = _read_rows(path) if path.exists() else np.zeros(0, DTYPE)
        if source and source_created:
            same = [r for r in rows if _s(r["source"]) == row["source"]
                    and _s(r["source_created"]) == row["source_created"]]
            if same:
                return int(same[0]["record_id"])
        table = _as_table(rows, extra=1)
        new_id = int(rows["record_id"].max()) + 1 if len(rows) else 0
        table[-1]["record_id"] = new_id
        for k, v in row.items():
            table[-1][k] = v
        _replace(path, table)
    return new_id


def clean_conditions(conditions: Mapping[str, Any] | None) -> dict[str, Any]:
    """Named scalars as JSON-able values: finite numbers (bools as 0/1) and strings."""
    out: dict[str, Any] = {}
    for name, value in (conditions or {}).items():
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            out[str(name)] = value
            continue
        a = np.asarray(value)
        if a.ndim != 0 or a.dtype.kind not in "biuf":
            raise ValueError(f"condition {name!r} must be a number or a string, got {value!r}")
        v = float(a)
        if not math.isfinite(v):
            raise ValueError(f"condition {name!r} must be finite, got {value!r}")
        out[str(name)] = v
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _write_lock(path: Path) -> Iterator[None]:
    """Exclusive lock on `<path>.lock` (POSIX record lock: works on NFS and Lustre with
    locking enabled), waiting with backoff; DataError after LOCK_TIMEOUT."""
    with _THREAD_LOCK:
        with _process_lock(path):
            yield


@contextlib.contextmanager
def _process_lock(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise DataError(f"cannot create the history lock file: {exc}", path=str(lock_path)) from None
    try:
        deadline, wait = time.monotonic() + LOCK_TIMEOUT, 0.005
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise DataError(f"another writer has held the lock for {LOCK_TIMEOUT:.0f} s",
                                    path=str(lock_path)) from None
                time.sleep(wait)
                wait = min(wait * 2, 0.5)
        try:
            yield
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _replace(path: Path, rows: np.ndarray) -> None:
    """Write `rows` to a temporary file next to `path`, fsync, rename over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.create_dataset(TABLE, data=rows, maxshape=(None,), chunks=True)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise DataError(f"cannot write the history: {exc}", path=str(path)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# --------------------------------------------------------------------------- reading
def _s(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _read_rows(path: Path) -> np.ndarray:
    """Every row of a history file (DataError if it is not one)."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            if _s(f.attrs.get("format", "")) != FORMAT or TABLE not in f:
                raise DataError(f"not an hpcopt fit history (no '{FORMAT}' format attr and "
                                f"'{TABLE}' table)", path=str(path))
            version = int(f.attrs.get("format_version", 0))
            if version > FORMAT_VERSION:
                raise DataError(f"history format {version} is newer than this hpcopt "
                                f"({FORMAT_VERSION})", path=str(path))
            rows = f[TABLE][()]
    except DataError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read the history: {exc}", path=str(path)) from None
    return _as_table(rows)


def _as_table(rows: np.ndarray, extra: int = 0) -> np.ndarray:
    """`rows` copied into a fresh DTYPE array (h5py's string type kept) with `extra` empty rows."""
    out = np.zeros(len(rows) + extra, DTYPE)
    for name in DTYPE.names:
        if name in (rows.dtype.names or ()):
            col = rows[name]
            out[name][:len(rows)] = [_s(v) for v in col] if DTYPE[name] == _STR else col
    return out


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record as a dict (params and conditions decoded); [] if there is no file yet."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for r in _read_rows(path):
        out.append({"record_id": int(r["record_id"]), "timestamp": _s(r["timestamp"]),
                    "model": _s(r["model"]), "params": json.loads(_s(r["params"])),
                    "conditions": json.loads(_s(r["conditions"])), "chi2": float(r["chi2"]),
                    "chi2_reduced": float(r["chi2_reduced"]), "source": _s(r["source"]),
                    "source_created": _s(r["source_created"])})
    return out


def load_history(path: str | Path, model: str,
                 param_names: Sequence[str] | None = None) -> History:
    """The fits of `model` as arrays; an empty History when there are none (or no file).

    `param_names` picks (and orders) the parameter columns; records lacking one of them
    are left out.  By default the names of the latest record of the model are used.
    """
    records = [r for r in read_records(path) if r["model"] == model]
    if param_names is None:
        param_names = tuple(records[-1]["params"]) if records else ()
    names = tuple(param_names)
    records = [r for r in records if all(n in r["params"] for n in names)]
    cond_names = sorted({k for r in records for k, v in r["conditions"].items()
                         if not isinstance(v, str)})
    n = len(records)
    params = np.array([[r["params"][k] for k in names] for r in records],
                      dtype=np.float64).reshape(n, len(names))
    conds = np.array([[float(r["conditions"].get(k, math.nan)) for k in cond_names]
                      for r in records], dtype=np.float64).reshape(n, len(cond_names))
    return History(model=model, param_names=names, condition_names=tuple(cond_names),
                   params=params, conditions=conds,
                   chi2=np.array([r["chi2"] for r in records], dtype=np.float64),
                   chi2_reduced=np.array([r["chi2_reduced"] for r in records], dtype=np.float64),
                   record_ids=np.array([r["record_id"] for r in records], dtype=np.int64),
                   timestamps=tuple(r["timestamp"] for r in records),
                   sources=tuple(r["source"] for r in records))
