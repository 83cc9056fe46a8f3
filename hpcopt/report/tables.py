"""Reading result-file tables for analysis: finished rows only, strings decoded, flat columns.

Shared by the Python API, the exports and the plots, so "which rows count" and
"how an array column becomes plain columns" are decided in one place.  Rows come as the
campaign wrote them (the row dtype: a table's vectors joined back from their named
columns or side datasets, see store.layout; files of format 1 hold them in the table).
Rows that count:

* tables with a ``status`` column (tasks, trials, rounds): rows whose status is
  not pending;
* ``samples`` (temper): rows already written (finite energy; unwritten rows are NaN);
* the end-of-run temper tables (pairs, replicas, slots): all rows once the run wrote
  them (root attr ``rounds_done`` present), none before.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from ..errors import ResultFileError, UsageError
from ..store import schema
from ..store.layout import TableLayout, slice_rows
from ..store.reader import open_result

#: temper tables written once, at the end of a run (with the root attr below)
FINAL_TABLES = ("pairs", "replicas", "slots")
FINAL_MARK = "rounds_done"


def raised_by_h5py(exc: BaseException) -> bool:
    """True when `exc` comes from reading a damaged file (inside h5py, or JSON text in the
    file that does not parse), not from hpcopt's own code."""
    if isinstance(exc, json.JSONDecodeError):
        return True
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and "h5py" in Path(last).parts


_READ_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)


def _damaged(path, exc: BaseException) -> ResultFileError:
    return ResultFileError(f"{path}: cannot read the file ({exc}); it may be corrupted")


@contextmanager
def reading(path: str | Path) -> Iterator[h5py.File]:
    """Open a result file read-only for analysis (see store.reader.open_result); h5py errors
    from a damaged file, at opening or while reading, become ResultFileError (exit 2)."""
    try:
        f = open_result(path)
    except _READ_ERRORS as exc:
        if raised_by_h5py(exc):
            raise _damaged(path, exc) from None
        raise
    try:
        yield f
    except _READ_ERRORS as exc:
        if raised_by_h5py(exc):
            raise _damaged(path, exc) from None
        raise
    finally:
        f.close()


def make_dir(out_dir: str | Path) -> Path:
    """Create an output directory; a clear error (exit 2) when that is impossible."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out_dir}: cannot create the output directory ({exc})") from None
    return out_dir


def table_names(f: h5py.File) -> list[str]:
    """Compound datasets at the root of the file: its tables, in file order."""
    return [name for name, obj in f.items()
            if isinstance(obj, h5py.Dataset) and obj.dtype.names is not None]


def decode_attr(name: str, value: Any) -> Any:
    """An HDF5 attribute as a plain Python value (JSON text decoded, except the config)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        if name != schema.ATTR_CONFIG and value[:1] in "[{":
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def attrs_of(obj) -> dict[str, Any]:
    return {k: decode_attr(k, v) for k, v in obj.attrs.items()}


def _keep_mask(f: h5py.File, name: str, rows: np.ndarray) -> np.ndarray:
    names = rows.dtype.names
    if "status" in names:
        return rows["status"] != schema.PENDING
    if name == "samples" and "energy" in names:
        return np.isfinite(rows["energy"])
    if name in FINAL_TABLES:                  # tempering's end-of-run tables
        return np.full(len(rows), FINAL_MARK in f.attrs)
    return np.ones(len(rows), dtype=bool)


def columns(f: h5py.File, name: str) -> tuple[str, ...]:
    """The columns of table `name` as rows hold them (vectors joined)."""
    return TableLayout.of(f[name]).row_dtype.names


def row_at(f: h5py.File, name: str, i: int) -> np.void:
    """Row i of table `name` (vectors joined; strings as stored)."""
    ds = f[name]
    return TableLayout.of(ds).read(ds, i, i + 1)[0]


def iter_rows(f: h5py.File, name: str, *, all_rows: bool = False,
              fields: list[str] | None = None) -> Iterator[np.ndarray]:
    """Finished rows of table `name` in slices of bounded size (vlen strings decoded to str).

    `fields` restricts the columns read (plus what the filter needs).
    """
    ds = f[name]
    layout = TableLayout.of(ds)
    need = None
    if fields is not None:
        names = layout.row_dtype.names
        extra = [c for c in ("status", "energy") if c in names and c not in fields]
        need = list(fields) + extra
    step = slice_rows(layout.fields_dtype(need))
    for a in range(0, ds.shape[0], step):
        rows = layout.read(ds, a, a + step, need)
        if not all_rows:
            rows = rows[_keep_mask(f, name, rows)]
        if fields is not None and list(rows.dtype.names) != list(fields):
            rows = _select(rows, fields)
        yield decode_strings(rows)


def read_table(f: h5py.File, name: str, *, all_rows: bool = False,
               fields: list[str] | None = None) -> np.ndarray:
    """All finished rows of a table as one structured array (see :func:`iter_rows`)."""
    parts = list(iter_rows(f, name, all_rows=all_rows, fields=fields))
    if not parts:
        layout = TableLayout.of(f[name])
        dtype = layout.row_dtype if fields is None else _select(
            np.zeros(0, layout.fields_dtype(fields)), fields).dtype
        return np.zeros(0, dtype=dtype)
    return np.concatenate(parts)


def _select(rows: np.ndarray, fields: list[str]) -> np.ndarray:
    out = np.zeros(len(rows), dtype=[(n, rows.dtype[n]) for n in fields])
    for n in fields:
        out[n] = rows[n]
    return out


def decode_strings(rows: np.ndarray) -> np.ndarray:
    """Variable-length string columns (object dtype) as Python str instead of bytes."""
    for n in rows.dtype.names or ():
        if rows.dtype[n].kind == "O":
            rows[n] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                       for v in rows[n]]
    return rows


def flat_columns(rows: np.ndarray, names: dict[str, list[str]] | None = None
                 ) -> dict[str, np.ndarray]:
    """Structured rows -> ordered {column name: 1-D array}.

    Array columns become ``name_0, name_1, ...`` (C order for several dimensions), or the
    names `names` gives a vector (e.g. a sweep's parameters; ignored when they do not fit or
    would repeat a column); fixed-length byte strings (the error message) and vlen strings
    become str; the ``status`` enum becomes its name (``ok``, ``failed``, ...).
    """
    out: dict[str, np.ndarray] = {}
    scalars = [n for n in rows.dtype.names if rows.dtype[n].subdtype is None]
    for n in rows.dtype.names:
        col = rows[n]
        if col.ndim > 1:
            flat = col.reshape(len(col), -1)
            labels = _vector_names(n, flat.shape[1], (names or {}).get(n), scalars, out)
            for i, label in enumerate(labels):
                out[label] = flat[:, i]
        elif n == "status" and col.dtype.kind in "iu":
            out[n] = np.array([schema.STATUS_BY_CODE.get(int(v), str(int(v))) for v in col],
                              dtype=object)
        elif col.dtype.kind == "S":
            out[n] = np.array([schema.decode_message(v) for v in col], dtype=object)
        elif col.dtype.kind == "O":
            out[n] = np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                               for v in col], dtype=object)
        else:
            out[n] = col
    return out


def _vector_names(field: str, width: int, given: list[str] | None, scalars, taken) -> list[str]:
    default = [f"{field}_{i}" for i in range(width)]
    if given is None or len(given) != width or len(set(given)) != width:
        return default
    if set(given) & (set(scalars) | set(taken)):
        return default
    return list(given)
