"""Read result files without MPI: validation, counts and the best row.

Used by `hpcopt report` (often on a laptop, possibly while the job still
writes) and by the campaigns when they summarise at the end.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np

from ..errors import ResultFileError
from . import schema

SCAN_ROWS = 65536


def open_result(path: str | Path) -> h5py.File:
    """Open read-only (no file locking: the writer may still be running) and validate."""
    path = Path(path)
    if not path.exists():
        raise ResultFileError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise ResultFileError(f"{path}: not a readable HDF5 file ({exc}); it may be truncated "
                              "or corrupted") from None
    kind = f.attrs.get(schema.ATTR_KIND)
    if isinstance(kind, bytes):
        kind = kind.decode()
    if kind not in schema.KINDS or schema.ATTR_FORMAT not in f.attrs:
        f.close()
        raise ResultFileError(f"{path}: not an hpcopt result file (no valid '{schema.ATTR_KIND}' "
                              "attribute)")
    if int(f.attrs[schema.ATTR_FORMAT]) > schema.FORMAT_VERSION:
        version = f.attrs.get(schema.ATTR_VERSION)
        f.close()
        raise ResultFileError(f"{path}: written by a newer hpcopt ({version}); upgrade hpcopt")
    if schema.MAIN_TABLE[kind] not in f:
        f.close()
        raise ResultFileError(f"{path}: has no '{schema.MAIN_TABLE[kind]}' table; it may be corrupted")
    return f


def attr_str(obj, name: str, default: str = "") -> str:
    v = obj.attrs.get(name, default)
    return v.decode() if isinstance(v, bytes) else str(v)


def attr_json(obj, name: str, default=None):
    v = obj.attrs.get(name)
    if v is None:
        return default
    return json.loads(v.decode() if isinstance(v, bytes) else v)


def scan_table(ds: h5py.Dataset, *, minimize: bool = True) -> dict:
    """Counts per status and the best ok row (min objective, or max), scanning in slices."""
    counts = {name: 0 for name in schema.STATUS_NAMES}
    best_row, best_val = None, math.inf
    sign = 1.0 if minimize else -1.0
    column = "objective" if "objective" in ds.dtype.names else (
        "best_energy" if "best_energy" in ds.dtype.names else None)   # temper rounds
    for a in range(0, ds.shape[0], SCAN_ROWS):
        rows = ds[a:a + SCAN_ROWS]
        for name, code in schema.STATUS_NAMES.items():
            counts[name] += int(np.count_nonzero(rows["status"] == code))
        ok = np.flatnonzero(rows["status"] == schema.OK)
        if len(ok) and column:
            vals = sign * rows[column][ok]
            i = ok[np.argmin(vals)]
            if sign * rows[column][i] < best_val:
                best_val, best_row = float(sign * rows[column][i]), rows[i]
    return {"counts": counts, "best_row": best_row}


def failures(ds: h5py.Dataset, limit: int = 10) -> list[tuple[str, int]]:
    """Failed/timed-out rows grouped by error message, most frequent first."""
    groups: dict[str, int] = {}
    if "message" not in ds.dtype.names:
        return []
    for a in range(0, ds.shape[0], SCAN_ROWS):
        rows = ds[a:a + SCAN_ROWS]
        bad = (rows["status"] == schema.FAILED) | (rows["status"] == schema.TIMEOUT)
        for msg in rows["message"][bad]:
            text = schema.decode_message(msg)
            groups[text] = groups.get(text, 0) + 1
    return sorted(groups.items(), key=lambda kv: -kv[1])[:limit]
