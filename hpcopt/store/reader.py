"""Read result files without MPI: one validating open, counts and the best row.

Used by `hpcopt report` (often on a laptop, possibly while the job still
writes), by ``--resume`` (through :func:`hpcopt.store.resultfile.check_existing`)
and by the campaigns when they summarise at the end.  Every reader opens files
through :func:`open_result`, which checks, before any row is read, everything the
readers rely on, so that a damaged or crafted file ends with one message naming the
file and the fault (ResultFileError, exit 2) within a fraction of a second:

* the root attributes have their types (``kind`` a string naming a kind,
  ``format_version``, ``world_size``, ``seed`` integers, ...);
* no link leaves the file (external or soft links, external raw storage, virtual
  datasets), and the file holds a bounded number of objects;
* the kind's tables are 1-D compound datasets (not groups) with the columns of that
  kind's layout (so a kind that does not match the layout is refused), their vectors
  where the ``vectors`` attribute says (store.layout: named columns, or numeric side
  datasets with a row per table row);
* a table or array declares no more rows than the file stores (a crafted 2^40-row
  table would otherwise be scanned for ever, or allocated);
* the ``best`` group holds a numeric objective and JSON parameters;
* the stored config text is valid TOML within the nesting limit of configs.
"""

from __future__ import annotations

import json
import math
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from ..errors import ResultFileError
from ..tomlread import loads as toml_loads
from . import schema
from .layout import LayoutError, TableLayout

SCAN_ROWS = 65536
_NUMBER_TEXT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
#: more objects than this (groups, datasets, links) is not an hpcopt layout
MAX_OBJECTS = 100_000
#: deeper groups than this are not an hpcopt layout (temper checkpoints are 2 deep)
MAX_DEPTH = 8
#: a compressed dataset (re-packed by h5repack) may declare this many times its stored bytes
MAX_COMPRESSION = 1000

# numpy kind codes of the columns (an HDF5 enum such as status reads as an integer)
_INT, _REAL, _TEXT, _BOOL = "iu", "iuf", "SOU", "b"
_NUMBER = "iufb"

#: the columns each table of each kind must have (of the row dtype, vectors joined: see
#: store.layout); tables not listed under a kind are neither required nor read as tables of
#: that kind
LAYOUT: dict[str, dict[str, dict[str, str]]] = {
    "sweep": {
        "tasks": {"task_id": _INT, "status": _INT, "attempts": _INT, "rank": _INT,
                  "t_start": _REAL, "wall": _REAL, "message": _TEXT, "x0": _REAL, "x": _REAL,
                  "objective": _REAL, "chi2_reduced": _REAL, "n_eval": _INT},
    },
    "temper": {
        "rounds": {"task_id": _INT, "status": _INT, "slot": _INT, "temperature": _REAL,
                   "energy": _REAL, "move_acceptance": _REAL, "best_energy": _REAL},
        "samples": {"task_id": _INT, "replica": _INT, "temperature": _REAL, "energy": _REAL,
                    "state": _NUMBER},
        "pairs": {"task_id": _INT, "t_low": _REAL, "t_high": _REAL, "attempted": _INT,
                  "accepted": _INT, "acceptance": _REAL, "mean_probability": _REAL},
        "replicas": {"task_id": _INT, "round_trips": _INT, "mean_round_trip": _REAL,
                     "best_energy": _REAL, "best_round": _INT, "final_slot": _INT,
                     "move_acceptance": _REAL},
        "slots": {"task_id": _INT, "temperature": _REAL, "n": _INT, "mean_energy": _REAL,
                  "var_energy": _REAL},
    },
    "hpo": {
        "trials": {"task_id": _INT, "status": _INT, "state": _TEXT, "objective": _REAL,
                   "params_json": _TEXT, "attempt": _INT, "retry_of": _INT, "retried": _INT,
                   "error": _TEXT, "rank": _INT, "worker": _TEXT, "started": _REAL,
                   "duration": _REAL, "n_steps": _INT, "last_step": _INT,
                   "intermediate_json": _TEXT, "info_json": _TEXT},
    },
}


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_text(v: Any) -> bool:
    return isinstance(v, (str, bytes))


def _is_json(v: Any, container: type) -> bool:
    if not _is_text(v):
        return False
    try:
        return isinstance(json.loads(v), container)
    except ValueError:
        return False


@dataclass(frozen=True)
class _Expect:
    """What an attribute must hold: a description for the message and its test."""

    expected: str
    test: Callable[[Any], bool]


INT = _Expect("an integer", _is_int)
REAL = _Expect("a number", lambda v: _is_int(v) or isinstance(v, (float, np.floating)))
TEXT = _Expect("a string", _is_text)
BOOL = _Expect("true or false", lambda v: isinstance(v, (bool, np.bool_)))
JSON_LIST = _Expect("JSON text of a list", lambda v: _is_json(v, list))
JSON_TABLE = _Expect("JSON text of an object", lambda v: _is_json(v, dict))

#: attributes readers convert (int(), float(), json.loads()), by the object that holds them
ROOT_ATTRS = {schema.ATTR_STATUS: TEXT, schema.ATTR_CONFIG: TEXT, schema.ATTR_CONFIG_HASH: TEXT,
              schema.ATTR_VERSION: TEXT, schema.ATTR_CREATED: TEXT, schema.ATTR_WORLD: INT,
              schema.ATTR_SEED: INT, schema.ATTR_HOST: TEXT, "config_path": TEXT,
              "elapsed_last_run": REAL, "resumes": INT, "rounds_done": INT,
              "log_z_ratio": REAL, "temperatures": JSON_LIST}
TABLE_ATTRS = {"param_names": JSON_LIST, "lower": JSON_LIST, "upper": JSON_LIST,
               "direction": TEXT, "n_replicas": INT, "array_task": INT, "population": INT,
               "max_steps": INT, "perturbation_interval": INT, "perturbation_factors": JSON_LIST,
               "quantile_fraction": REAL, "resample_probability": REAL,
               "columns": JSON_TABLE, "vectors": JSON_LIST}
BEST_ATTRS = {"objective": REAL, "params": JSON_TABLE, "task_id": INT, "chi2_reduced": REAL,
              "stderr": JSON_TABLE, "covariance": JSON_LIST, "replica": INT, "round": INT,
              "jacobian_singular": BOOL}
#: plain (non-table) datasets readers load whole
ARRAYS = ("warm_starts",)


def open_result(path: str | Path, *, kind: str | None = None) -> h5py.File:
    """Open read-only (no file locking: the writer may still be running) and validate.

    `kind`: the campaign kind the caller needs (``--resume``); None accepts any kind.
    Raises ResultFileError (exit 2) naming the file and the fault.
    """
    path = Path(path)
    if not path.exists():
        raise ResultFileError(f"{path}: no such file")
    if not stat.S_ISREG(path.stat().st_mode):
        raise ResultFileError(f"{path}: not a regular file (a directory, pipe or device)")
    try:
        f = h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise ResultFileError(f"{path}: not a readable HDF5 file ({exc}); it may be truncated "
                              "or corrupted") from None
    try:
        validate(f, path, kind=kind)
    except ResultFileError:
        f.close()
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:  # damaged metadata
        f.close()
        raise ResultFileError(f"{path}: cannot read the file ({exc}); it may be "
                              "corrupted") from None
    return f


def validate(f: h5py.File, path: str | Path, *, kind: str | None = None) -> None:
    """Check an open file against the result-file layout (see the module docstring)."""
    def fault(text: str) -> ResultFileError:
        return ResultFileError(f"{path}: {text}")

    found = _root_kind(f, fault)
    version = _attr(f, schema.ATTR_FORMAT)
    if version is None:
        raise fault(f"not an hpcopt result file (no '{schema.ATTR_FORMAT}' attribute)")
    if not _is_int(version):
        raise fault(f"root attribute '{schema.ATTR_FORMAT}' is {_describe(version)}, "
                    "expected an integer: not an hpcopt result file, or a damaged one")
    if int(version) > schema.FORMAT_VERSION:
        raise fault(f"written by a newer hpcopt ({attr_str(f, schema.ATTR_VERSION, '?')}, "
                    f"format {int(version)}; this hpcopt reads format "
                    f"{schema.FORMAT_VERSION}): upgrade hpcopt")
    if kind is not None and found != kind:
        raise fault(f"holds a {found!r} campaign, not {kind!r}")
    _check_links(f, fault)
    _check_attrs(f, "root", ROOT_ATTRS, fault)
    config = _attr(f, schema.ATTR_CONFIG)
    if config is not None:     # readers parse it (plots, fit data, budgets)
        try:
            toml_loads(config.decode("utf-8") if isinstance(config, bytes) else config)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise fault(f"root attribute 'config' is not valid TOML ({exc})") from None
    layout = LAYOUT[found]
    main = schema.MAIN_TABLE[found]
    if main not in f:
        raise fault(f"has no '{main}' table, which every {found} file has: the file is "
                    "damaged, or its 'kind' attribute does not match its layout")
    for name, columns in layout.items():
        if name in f:
            _check_table(f, name, columns, found, fault)
    for name in ARRAYS:
        if name in f:
            ds = f[name]
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in _NUMBER:
                raise fault(f"'{name}' is not a numeric array")
            _check_size(ds, name, fault)
    best = f.get("best")
    if best is not None:
        if not isinstance(best, h5py.Group):
            raise fault("'best' is a dataset, expected a group")
        _check_attrs(best, "best", BEST_ATTRS, fault)


def _attr(obj, name: str) -> Any:
    """An attribute as a Python/numpy scalar (0-d arrays unwrapped), or None if missing."""
    if name not in obj.attrs:
        return None
    value = obj.attrs[name]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    return value


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, h5py.Empty):
        return "empty"
    if _is_text(value):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return f"a string ({text[:40]!r})"
    if isinstance(value, (bool, np.bool_)):
        return f"a boolean ({bool(value)})"
    return f"{type(value).__name__} {value!r}"[:60]


def _root_kind(f: h5py.File, fault) -> str:
    kinds = ", ".join(map(repr, schema.KINDS))
    value = _attr(f, schema.ATTR_KIND)
    if value is None:
        raise fault(f"not an hpcopt result file (no '{schema.ATTR_KIND}' attribute)")
    if not _is_text(value):
        raise fault(f"not an hpcopt result file: root attribute '{schema.ATTR_KIND}' is "
                    f"{_describe(value)}, expected one of {kinds}")
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if text not in schema.KINDS:
        raise fault(f"not an hpcopt result file: root attribute '{schema.ATTR_KIND}' is "
                    f"{text[:40]!r}, expected one of {kinds}")
    return text


def _check_attrs(obj, where: str, expected: dict[str, _Expect], fault) -> None:
    for name, want in expected.items():
        value = _attr(obj, name)
        if value is not None and not want.test(value):
            raise fault(f"{where} attribute '{name}' is {_describe(value)}, expected "
                        f"{want.expected}")


def _check_links(f: h5py.File, fault) -> None:
    """No link out of the file, no raw data outside it, a bounded tree.

    Walks with HDF5's own visitors (each object once, so hard-link cycles end), without
    opening objects through the high-level API: a file with thousands of checkpoint arrays
    costs milliseconds.
    """
    count = 0

    def on_link(name: bytes):
        nonlocal count
        count += 1
        if count > MAX_OBJECTS:
            return f"holds more than {MAX_OBJECTS} objects: not an hpcopt layout"
        if name.count(b"/") >= MAX_DEPTH:
            return f"'/{name.decode()}': groups nested deeper than {MAX_DEPTH}: not an " \
                   "hpcopt layout"
        kind = f.id.links.get_info(name).type
        if kind == h5py.h5l.TYPE_EXTERNAL:
            link = f.get(name.decode(), getlink=True)
            return (f"'/{name.decode()}' is an external link (to {link.filename}:{link.path}); "
                    "a result file holds no links to other files")
        if kind != h5py.h5l.TYPE_HARD:
            return f"'/{name.decode()}' is a soft link; hpcopt never writes links"
        return None

    def on_object(name: bytes, info):
        if info.type != h5py.h5o.TYPE_DATASET:
            return None
        plist = h5py.h5d.open(f.id, name).get_create_plist()
        if plist.get_external_count():
            return (f"'/{name.decode()}' keeps its data in an external file; a result file "
                    "holds all its data")
        if plist.get_layout() == h5py.h5d.VIRTUAL:
            return (f"'/{name.decode()}' is a virtual dataset (its data lives in other "
                    "files); a result file holds all its data")
        return None

    problem = f.id.links.visit(on_link)
    if problem is None:
        problem = h5py.h5o.visit(f.id, on_object, info=True)
    if problem is not None:
        raise fault(problem)


def _check_table(f: h5py.File, name: str, columns: dict[str, str], kind: str, fault) -> None:
    obj = f[name]
    if not isinstance(obj, h5py.Dataset):
        raise fault(f"'{name}' is a group where the {kind} table '{name}' belongs")
    if obj.dtype.names is None or obj.ndim != 1:
        raise fault(f"'{name}' is a {obj.ndim}-D {obj.dtype} array where the {kind} table "
                    f"'{name}' (a 1-D compound dataset) belongs")
    try:
        layout = TableLayout.of(obj)
    except LayoutError as exc:
        raise fault(f"{exc}: damaged or crafted") from None
    row = layout.row_dtype
    for column, kinds in columns.items():
        if column not in row.names:
            raise fault(f"table '{name}' has no '{column}' column: not the layout of a "
                        f"{kind} file (damaged, or 'kind' does not match the tables)")
        dt = row[column]
        base = dt.subdtype[0] if dt.subdtype else dt
        if base.kind not in kinds:
            raise fault(f"table '{name}': column '{column}' holds {base} values, not "
                        f"{'numbers' if kinds != _TEXT else 'text'}")
    _check_size(obj, name, fault)
    for v in layout.side_datasets:
        _check_size(f[v.dataset], v.dataset, fault)
    _check_attrs(obj, f"table '{name}'", TABLE_ATTRS, fault)
    extra = _TABLE_CHECKS.get((kind, name))
    if extra is not None:
        extra(obj, row, fault)


def _check_size(ds: h5py.Dataset, name: str, fault) -> None:
    """A dataset may not declare more data than the file stores for it."""
    item = ds.id.get_type().get_size()
    declared = int(np.prod(ds.shape, dtype=object)) * item if ds.shape else item
    stored = ds.id.get_storage_size()
    slack = int(np.prod(ds.chunks, dtype=object)) * item if ds.chunks else 0
    if ds.id.get_create_plist().get_nfilters():
        stored *= MAX_COMPRESSION
    if declared > stored + slack:
        rows = ds.shape[0] if ds.shape else 1
        raise fault(f"'{name}' declares {rows} rows ({declared / 2**20:.6g} MiB) but the file "
                    f"stores {ds.id.get_storage_size()} bytes of them: damaged or crafted")


def _check_sweep_columns(ds: h5py.Dataset, row: np.dtype, fault) -> None:
    n = _width(row["x"])
    if _width(row["x0"]) != n:
        raise fault("table 'tasks': columns 'x0' and 'x' have different lengths")
    for attr in ("param_names", "lower", "upper"):
        value = _attr(ds, attr)
        if value is not None and len(json.loads(value)) != n:
            raise fault(f"table 'tasks': attribute '{attr}' has {len(json.loads(value))} "
                        f"entries for {n} parameters")


def _check_ladder_columns(ds: h5py.Dataset, row: np.dtype, fault) -> None:
    n = _width(row["temperature"])
    for column in ("slot", "energy", "move_acceptance"):
        if _width(row[column]) != n:
            raise fault(f"table 'rounds': column '{column}' does not have one value per "
                        f"replica ({n})")
    for column in ("swap_attempted", "swap_accepted", "swap_probability"):
        if column in row.names and _width(row[column]) != n - 1:
            raise fault(f"table 'rounds': column '{column}' does not have one value per "
                        f"neighbour pair ({n - 1})")
    value = _attr(ds, "n_replicas")
    if value is not None and int(value) != n:
        raise fault(f"table 'rounds': attribute 'n_replicas' is {int(value)} but the rows "
                    f"hold {n} replicas")


def _width(dt: np.dtype) -> int:
    return int(np.prod(dt.subdtype[1])) if dt.subdtype else 1


def attr_str(obj, name: str, default: str = "") -> str:
    v = obj.attrs.get(name, default)
    return v.decode() if isinstance(v, bytes) else str(v)


def attr_json(obj, name: str, default=None):
    v = obj.attrs.get(name)
    if v is None:
        return default
    return json.loads(v.decode() if isinstance(v, bytes) else v)


def scan_table(ds: h5py.Dataset, *, minimize: bool = True) -> dict:
    """Counts per status and the best ok row (min objective, or max; a row of the row
    dtype, vectors joined), scanning the status and objective columns in slices."""
    counts = {name: 0 for name in schema.STATUS_NAMES}
    best_at, best_val = None, math.inf
    sign = 1.0 if minimize else -1.0
    column = "objective" if "objective" in ds.dtype.names else (
        "best_energy" if "best_energy" in ds.dtype.names else None)   # temper rounds
    for a in range(0, ds.shape[0], SCAN_ROWS):
        rows = ds.fields(["status"] + ([column] if column else []))[a:a + SCAN_ROWS]
        for name, code in schema.STATUS_NAMES.items():
            counts[name] += int(np.count_nonzero(rows["status"] == code))
        ok = np.flatnonzero(rows["status"] == schema.OK)
        if len(ok) and column:
            vals = sign * rows[column][ok]
            i = ok[np.argmin(vals)]
            if sign * rows[column][i] < best_val:
                best_val, best_at = float(sign * rows[column][i]), a + int(i)
    best_row = None if best_at is None else TableLayout.of(ds).read(ds, best_at, best_at + 1)[0]
    return {"counts": counts, "best_row": best_row}


def failure_groups(ds: h5py.Dataset, limit: int = 10) -> list[dict]:
    """Failed/timed-out rows grouped by error message with numbers masked, most frequent first.

    Each group: ``message`` (the pattern of the message's first line, numbers as ``#``),
    ``count``, ``example`` (the first line of one such message).
    """
    column = "message" if "message" in ds.dtype.names else (
        "error" if "error" in ds.dtype.names else None)
    if column is None:
        return []
    groups: dict[str, list] = {}
    for a in range(0, ds.shape[0], SCAN_ROWS):
        rows = ds.fields(["status", column])[a:a + SCAN_ROWS]
        bad = (rows["status"] == schema.FAILED) | (rows["status"] == schema.TIMEOUT)
        for raw, status in zip(rows[column][bad], rows["status"][bad]):
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            text = text.strip().splitlines()[0] if text.strip() else (
                "timed out" if status == schema.TIMEOUT else "(no message)")   # not tracebacks
            key = _NUMBER_TEXT.sub("#", text)
            entry = groups.setdefault(key, [0, text])
            entry[0] += 1
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
    return [{"message": k, "count": c, "example": ex} for k, (c, ex) in ordered]


#: checks of a table's columns beyond LAYOUT, by (kind, table)
_TABLE_CHECKS = {("sweep", "tasks"): _check_sweep_columns,
                 ("temper", "rounds"): _check_ladder_columns}
