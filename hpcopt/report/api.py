"""The Python API for notebooks: a result file as numpy structured arrays (or DataFrames).

    >>> from hpcopt.report import load
    >>> r = load("misra1a.h5")
    >>> r.kind, r.status, r.best["objective"]
    >>> rows = r.table()                   # the main table (r.main_table): finished rows only
    >>> p = r.params()                     # named parameter columns + objective
    >>> df = r.frame()                     # the same as a pandas DataFrame, named columns
    >>> pairs = r.frame("pairs")           # any other table by name

Each kind's main table: "tasks" (sweeps), "rounds" (tempering), "trials" (HPO and PBT).

Never imports MPI (nor Optuna or matplotlib): works on a laptop with h5py and numpy.
The file is opened read-only without locking for each call and closed again, so a
campaign may still be writing it; :meth:`Result.reload` refreshes the status and best.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from ..store import schema
from . import tables as _tables
from .loaded import open_loaded

PANDAS_MISSING = ("Result.frame() needs pandas, which is not installed (pip install pandas); "
                  "Result.table() returns the same rows as a numpy structured array")


def load(path: str | Path) -> "Result":
    """Open an hpcopt result file for analysis (ResultFileError if it is not one)."""
    return Result(path)


class Result:
    """Metadata of a result file, read at load time; tables are read on demand.

    Attributes: ``path``, ``kind`` ("sweep" | "temper" | "hpo"), ``campaign`` (the kind
    as registered: also "pbt"), ``status``
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
        with open_loaded(self.path) as r:
            self.attrs: dict[str, Any] = r.attrs
            self.kind: str = r.family
            self.campaign: str = r.kind
            self.status: str = self.attrs.get(schema.ATTR_STATUS, "")
            self.config: str = self.attrs.get(schema.ATTR_CONFIG, "")
            self.tables: tuple[str, ...] = r.tables
            self._table_attrs = {n: r.table_attrs(n) for n in self.tables}
            self.best: dict | None = r.hooks.best(r)
            self.main_table: str = r.main_table
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

        Rows as the campaign wrote them: vectors joined (a sweep's ``x0``/``x`` points,
        tempering's per-replica arrays, a sample's ``state``), whether the file keeps them
        as named columns or in datasets of their own.  Only finished rows (status not
        pending; written samples) unless `all_rows`.  Variable-length strings are str;
        ``status`` holds the codes of ``hpcopt.store.schema.STATUS_NAMES``; ``message``
        is utf-8 bytes.
        """
        name = name or self.main_table
        self._check(name)
        with _tables.reading(self.path) as f:
            return _tables.read_table(f, name, all_rows=all_rows)

    def frame(self, name: str | None = None, *, all_rows: bool = False):
        """The table as a pandas DataFrame (default: the main table), columns named after
        parameters: a sweep's refined point under each parameter's name and its start as
        ``<name>_start``; HPO parameters under their names (a name that another column has
        keeps its ``p_`` prefix); a continuous tempering problem's samples under the
        parameter names.  Other array columns become ``name_0, name_1, ...``; strings
        decoded, status as names.  Raises ImportError when pandas is missing."""
        pandas = _import_pandas()
        name = name or self.main_table
        self._check(name)
        with open_loaded(self.path) as r:
            rows = _tables.read_table(r.f, name, all_rows=all_rows)
            return pandas.DataFrame(r.hooks.frame_columns(r, name, rows))

    def params(self, *, start: bool = False) -> np.ndarray:
        """One row per finished task with a named column per parameter and ``objective``.

        Sweeps: the refined point (`start=True`: the start point); HPO: the trial's
        parameters (numeric ones as float, NaN when inactive; others as Python objects);
        temper (continuous problems): the stored T_min samples with ``energy``.
        """
        with open_loaded(self.path) as r:
            return r.hooks.params(r, start=start)

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
