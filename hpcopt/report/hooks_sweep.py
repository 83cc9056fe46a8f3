"""The sweep kind's report hooks: parameters from x (or x0), the search line, its figures."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..store.dtypes import sweep_frame_names
from ..store.reader import attr_json, attr_str
from . import tables as _tables
from .hooks import Loaded, ReportHooks
from .text import named_columns


def sweep_params(rows: np.ndarray, names: list[str], *, start: bool = False) -> np.ndarray:
    """task_id, one float column per parameter (x or x0), objective, chi2_reduced, status."""
    points = rows["x0" if start else "x"]
    cols = {n: points[:, i] for i, n in enumerate(names)}
    cols.update(objective=rows["objective"], chi2_reduced=rows["chi2_reduced"],
                status=rows["status"])
    return named_columns(rows["task_id"], cols)


class SweepReport(ReportHooks):
    noun = "starts"
    section = "sweep"

    def details(self, r: Loaded) -> dict:
        ds = r.main
        out = {k: attr_str(ds, k) for k in ("model", "objective_function", "search", "local")}
        out["param_names"] = attr_json(ds, "param_names", [])
        return out

    def row_params(self, r: Loaded, row) -> dict:
        names = attr_json(r.main, "param_names", [])
        return {n: float(v) for n, v in zip(names, row["x"])}

    def header_lines(self, s: dict) -> list[str]:
        d = s["sweep"]
        target = f"model {d['model']}" if d["model"] else f"objective {d['objective_function']}"
        return [f"  {target}; search {d['search']}; local {d['local']}"]

    def figures(self, r: Loaded) -> list[Callable]:
        from . import plots_sweep
        return list(plots_sweep.FIGURES)

    def params(self, r: Loaded, *, start: bool = False) -> np.ndarray:
        names = r.table_attrs(r.main_table).get("param_names", [])
        return sweep_params(_tables.read_table(r.f, r.main_table), names, start=start)

    def frame_columns(self, r: Loaded, table: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The refined point under the parameters' names, the start as ``<name>_start``."""
        if table != r.main_table:
            return super().frame_columns(r, table, rows)
        names = attr_json(r.main, "param_names", [])
        return _tables.flat_columns(rows, sweep_frame_names(names))


SWEEP_REPORT = SweepReport()
