"""The HDF5 result-file schema: attribute names, status codes, the common columns.

The table dtypes themselves are in :mod:`.dtypes`.

A result file is the record, the checkpoint and the analysis input at once.
Tables are compound datasets whose first column is ``task_id``; they are
allocated at full size when the campaign starts (row i belongs to task i,
``status = pending``) and rows are filled in place as tasks finish.  Because
the file's metadata never changes while rows are written, a killed job leaves
a valid file holding every row written before the kill.
"""

from __future__ import annotations

import h5py
import numpy as np

#: bumped when the layout changes incompatibly; newer files are refused, older ones read.
#: 2: compound tables hold scalar columns only (a sweep's points as x0_<name>, x_<name>;
#: tempering's per-replica vectors in datasets of their own, see .layout); typed HPO
#: parameter columns; a `columns` attribute (unit, description) on every table
FORMAT_VERSION = 2

KINDS = ("sweep", "temper", "hpo")
#: the families by name (the result file's `kind`; the campaign kinds are campaign.registry's)
SWEEP, TEMPER, HPO = KINDS
FILE_STATUSES = ("running", "complete", "interrupted")

# task status codes, stored as an HDF5 enum so h5dump shows the names
PENDING, OK, FAILED, TIMEOUT, PRUNED = 0, 1, 2, 3, 4
STATUS_NAMES = {"pending": PENDING, "ok": OK, "failed": FAILED, "timeout": TIMEOUT,
                "pruned": PRUNED}
STATUS_BY_CODE = {v: k for k, v in STATUS_NAMES.items()}
status_dtype = h5py.enum_dtype(STATUS_NAMES, basetype="i1")

MESSAGE_LEN = 200  # bytes kept of an error message (utf-8, cut between characters)

#: columns that legitimately differ between runs of the same campaign
PROVENANCE_COLUMNS = ("rank", "t_start", "wall")

# root attribute names
ATTR_KIND = "kind"
ATTR_STATUS = "status"
ATTR_CONFIG = "config"
ATTR_CONFIG_HASH = "config_hash"
ATTR_VERSION = "hpcopt_version"
ATTR_FORMAT = "format_version"
ATTR_CREATED = "created"
ATTR_WORLD = "world_size"
ATTR_SEED = "seed"
ATTR_HOST = "host"

#: the main table of each campaign kind
MAIN_TABLE = {"sweep": "tasks", "temper": "rounds", "hpo": "trials"}


def common_columns() -> list[tuple]:
    """Columns every task table starts with."""
    return [("task_id", "<i8"), ("status", status_dtype), ("attempts", "<i2"), ("rank", "<i4"),
            ("t_start", "<f8"), ("wall", "<f8"), ("message", f"S{MESSAGE_LEN}")]


def with_status(dtype: np.dtype) -> np.dtype:
    """`dtype` with a status column after task_id (tables whose rows come from a policy)."""
    fields = [(n, dtype.fields[n][0]) for n in dtype.names]
    return np.dtype(fields[:1] + [("status", status_dtype)] + fields[1:])


def as_rows(records: np.ndarray, dtype: np.dtype, status: int = OK) -> np.ndarray:
    """Copy policy records into table rows of `dtype` (which adds status)."""
    rows = np.zeros(len(records), dtype=dtype)
    for name in records.dtype.names:
        rows[name] = records[name]
    rows["status"] = status
    return rows


def encode_message(text: str) -> bytes:
    """`text` as at most MESSAGE_LEN bytes of UTF-8, cut between characters (so that
    ``decode()`` works; characters Python cannot encode become '?')."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= MESSAGE_LEN:
        return raw
    return raw[:MESSAGE_LEN].decode("utf-8", "ignore").encode("utf-8")


def decode_message(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def empty_rows(dtype: np.dtype, task_ids) -> np.ndarray:
    """Pending rows with task ids filled in (status pending, floats nan)."""
    task_ids = np.asarray(task_ids, dtype=np.int64)
    rows = np.zeros(len(task_ids), dtype=dtype)
    for name in dtype.names:
        if dtype[name].kind == "f" or (dtype[name].subdtype and dtype[name].subdtype[0].kind == "f"):
            rows[name] = np.nan
        elif dtype[name].kind == "O":         # variable-length strings
            rows[name] = ""
    rows["task_id"] = task_ids
    return rows
