"""The Python API for notebooks: a result file as numpy structured arrays (or DataFrames).

    >>> from hpcopt.report import load
    >>> r = load("misra1a.h5")
    >>> r.kind, r.status, r.best["objective"]
    >>> tasks = r.table("tasks")          # finished rows only
    >>> p = r.params()                     # named parameter columns + objective
    >>> df = r.frame("tasks")              # needs pandas

Never imports MPI (nor Optuna or matplotlib): works on a laptop with h5py and numpy.
The file is opened read-only without locking for each call and closed again, so a
campaign may still be writing it; :meth:`Result.reload` refreshes the status and best.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..store import schema
from . import tables as _tables

PANDAS_MISSING = ("Result.frame() needs pandas, which is not installed (pip install pandas); "
                  "Result.table() returns the same rows as a numpy structured array")


def load(path: str | Path) -> "Result":
    """Open an hpcopt result file for analysis (ResultFileError if it is not one)."""
    return Result(path)


class Result:
    """Metadata of a result file, read at load time; tables are read on demand.

    Attributes: ``path``, ``kind`` ("sweep" | "temper" | "hpo"), ``status``
    ("running" | "complete" | "interrupted"), ``attrs`` (root attributes, JSON text
    decoded), ``config`` (the TOML text of the campaign), ``best`` (dict with
    ``params`` and ``objective``, plus ``stderr`` etc. where the file has them; None
    before anything finished), ``tables`` (table names), ``main_table``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.reload()

    def reload(self) -> "Result":
        """Re-read status, attributes and best (for a file that is still being written)."""
        from .summary import best_of
        with _tables.reading(self.path) as f:
            self.attrs: dict[str, Any] = _tables.attrs_of(f)
            self.kind: str = self.attrs[schema.ATTR_KIND]
            self.status: str = self.attrs.get(schema.ATTR_STATUS, "")
            self.config: str = self.attrs.get(schema.ATTR_CONFIG, "")
            self.tables: tuple[str, ...] = tuple(_tables.table_names(f))
            self._table_attrs = {n: _tables.attrs_of(f[n]) for n in self.tables}
            self.best: dict | None = best_of(f, self.kind)
        self.main_table: str = schema.MAIN_TABLE[self.kind]
        return self

    def __repr__(self) -> str:
        return f"<hpcopt Result {self.path} kind={self.kind} status={self.status} " \
               f"tables={list(self.tables)}>"

    # -- tables ------------------------------------------------------------------------------
    def _check(self, name: str) -> None:
        if name not in self.tables:
            raise KeyError(f"{self.path} has no table {name!r}; tables: {', '.join(self.tables)}")

    def table_attrs(self, name: str) -> dict[str, Any]:
        """Attributes of a table (e.g. param_names, direction, study_name)."""
        self._check(name)
        return dict(self._table_attrs[name])

    def table(self, name: str | None = None, *, all_rows: bool = False) -> np.ndarray:
        """Rows of a table as a numpy structured array (default: the main table).

        Only finished rows (status not pending; written samples) unless `all_rows`.
        Variable-length strings are str; ``status`` holds the codes of
        ``hpcopt.store.schema.STATUS_NAMES``; ``message`` is utf-8 bytes.
        """
        name = name or self.main_table
        self._check(name)
        with _tables.reading(self.path) as f:
            return _tables.read_table(f, name, all_rows=all_rows)

    def frame(self, name: str | None = None, *, all_rows: bool = False):
        """The table as a pandas DataFrame: array columns expanded to ``name_0, name_1, ...``,
        strings decoded, status as names. Raises ImportError when pandas is missing."""
        return to_frame(self.table(name, all_rows=all_rows), _import_pandas())

    def params(self, *, start: bool = False) -> np.ndarray:
        """One row per finished task with a named column per parameter and ``objective``.

        Sweeps: the refined point (`start=True`: the start point); HPO: the trial's
        parameters (numeric ones as float, NaN when inactive; others as Python objects);
        temper (continuous problems): the stored T_min samples with ``energy``.
        """
        if self.kind == "sweep":
            names = self._table_attrs["tasks"].get("param_names", [])
            return sweep_params(self.table("tasks"), names, start=start)
        if self.kind == "hpo":
            return hpo_params(self.table("trials"))
        names = self._table_attrs.get("samples", {}).get("param_names") or []
        if not names:
            raise ValueError(f"{self.path}: this tempering problem's states are not named "
                             "parameters (e.g. Ising spins); use table('samples')['state']")
        return temper_params(self.table("samples"), names)

    # -- conveniences --------------------------------------------------------------------------
    def summary(self, top: int = 10) -> dict:
        """What `hpcopt report` prints, as a dict."""
        from .summary import summarize_file
        return summarize_file(self.path, top=top)

    def export(self, out_dir: str | Path) -> list[Path]:
        """`hpcopt report --export DIR`: CSV tables and JSON files; returns the paths."""
        from .export import export_all
        return export_all(self.path, out_dir)

    def plots(self, out_dir: str | Path) -> list[Path]:
        """`hpcopt report --plots DIR`: PNG figures; returns the paths."""
        from .plots import plot_all
        return plot_all(self.path, out_dir)


# -- conversions (module level: testable without a file) -------------------------------------

def _import_pandas():
    try:
        return importlib.import_module("pandas")
    except ImportError:
        raise ImportError(PANDAS_MISSING) from None


def to_frame(rows: np.ndarray, pandas_module) -> Any:
    """Structured rows -> ``pandas_module.DataFrame`` of tables.flat_columns(rows)."""
    return pandas_module.DataFrame(_tables.flat_columns(rows))


def _named(task_ids: np.ndarray, columns: dict[str, np.ndarray]) -> np.ndarray:
    dtype = [("task_id", "<i8")] + [(n, c.dtype) for n, c in columns.items()]
    out = np.zeros(len(task_ids), dtype=dtype)
    out["task_id"] = task_ids
    for n, c in columns.items():
        out[n] = c
    return out


def sweep_params(rows: np.ndarray, names: list[str], *, start: bool = False) -> np.ndarray:
    """task_id, one float column per parameter (x or x0), objective, chi2_reduced, status."""
    points = rows["x0" if start else "x"]
    cols = {n: points[:, i] for i, n in enumerate(names)}
    cols.update(objective=rows["objective"], chi2_reduced=rows["chi2_reduced"],
                status=rows["status"])
    return _named(rows["task_id"], cols)


def hpo_params(rows: np.ndarray) -> np.ndarray:
    """task_id, one column per parameter (from params_json), objective, status."""
    values = [json.loads(t) if t else {} for t in rows["params_json"]]
    names: list[str] = []
    for v in values:
        names += [k for k in v if k not in names]
    cols: dict[str, np.ndarray] = {}
    for n in names:
        col = [v.get(n) for v in values]
        numeric = all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))
                      for x in col)
        cols[n] = (np.array([np.nan if x is None else float(x) for x in col], dtype=np.float64)
                   if numeric else np.array(col + [None], dtype=object)[:-1])
    cols.update(objective=rows["objective"], status=rows["status"])
    return _named(rows["task_id"], cols)


def temper_params(rows: np.ndarray, names: list[str]) -> np.ndarray:
    """task_id (round), one column per coordinate of the T_min samples, energy."""
    state = rows["state"].reshape(len(rows), -1)
    cols = {n: state[:, i] for i, n in enumerate(names)}
    cols["energy"] = rows["energy"]
    return _named(rows["task_id"], cols)
