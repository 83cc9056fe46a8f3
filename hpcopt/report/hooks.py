"""What the analysis side knows of a campaign kind, and the one loaded view of a result file.

:class:`Loaded` is a result file opened once (read-only, validated) with what every part of
`hpcopt report` needs: attributes, the kind's :class:`ReportHooks`, the main table and one
scan of it (counts, best row).  The summary, the exports and the plots all take the same
:class:`Loaded`; nothing re-opens the file.  Each kind's hooks live in
``report/hooks_<kind>.py`` and are reached through the kind (``CampaignKind.report``).
Nothing here imports MPI, Optuna or matplotlib.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from ..store import schema
from ..store.reader import attr_str, scan_table
from . import tables as _tables


class Loaded:
    """A result file opened for analysis (see :func:`hpcopt.report.loaded.open_loaded`)."""

    def __init__(self, path: Path, f: h5py.File, kind: str, family: str, main_table: str,
                 hooks: "ReportHooks"):
        self.path, self.f = Path(path), f
        self.kind, self.family, self.main_table, self.hooks = kind, family, main_table, hooks
        self.attrs: dict[str, Any] = _tables.attrs_of(f)
        self.tables: tuple[str, ...] = tuple(_tables.table_names(f))

    @property
    def main(self) -> h5py.Dataset:
        return self.f[self.main_table]

    @property
    def status(self) -> str:
        return attr_str(self.f, schema.ATTR_STATUS)

    @property
    def config_text(self) -> str:
        return attr_str(self.f, schema.ATTR_CONFIG)

    @cached_property
    def direction(self) -> str:
        return attr_str(self.main, "direction", "minimize")

    @cached_property
    def scan(self) -> dict:
        """Counts per status and the best ok row of the main table (one pass)."""
        return scan_table(self.main, minimize=self.direction != "maximize")

    def table_attrs(self, name: str) -> dict[str, Any]:
        return _tables.attrs_of(self.f[name])

    def config_value(self, table: str, key: str, default: Any = None) -> Any:
        """A value of the recorded config (None-safe: the text may be anything)."""
        import tomllib
        try:
            return tomllib.loads(self.config_text).get(table, {}).get(key, default)
        except (tomllib.TOMLDecodeError, AttributeError):
            return default


class ReportHooks:
    """Defaults for campaigns whose main table has one row per task (sweep, hpo); a kind
    overrides what differs.  Every hook takes the :class:`Loaded` file or the summary."""

    noun = "tasks"                # what a main-table row is called in the text
    section = ""                  # key of the kind's own part of the summary
    best_label = "best objective"

    # -- the summary -------------------------------------------------------------------
    def task_counts(self, r: Loaded, counts: dict) -> tuple[int, int]:
        """(rows that count as tasks, of them pending)."""
        return int(r.main.shape[0]), counts["pending"]

    def details(self, r: Loaded) -> dict:
        """The kind's own part of the summary (``summary[section]``)."""
        return {}

    def row_params(self, r: Loaded, row) -> dict:
        """The parameters of one main-table row."""
        return {}

    def best(self, r: Loaded) -> dict | None:
        """The campaign's ``best`` group, or (running/killed) the best row so far."""
        g = r.f.get("best")
        if g is not None and "objective" in g.attrs:
            attrs = _tables.attrs_of(g)
            best = {"params": attrs.pop("params", {}) or {},
                    "objective": float(attrs.pop("objective"))}
            best.update(attrs)
            return best
        row = r.scan["best_row"]
        if row is None:
            return None
        return {"params": self.row_params(r, row), "objective": float(row["objective"]),
                "task_id": int(row["task_id"])}

    def warnings(self, r: Loaded) -> list[str]:
        """Things the reader must know before trusting the numbers: XPCS fits made with the
        first (wrong) shear convention, in sweeps and fit posteriors alike."""
        from ..models.xpcs_convention import convention_warning
        return [w for w in (convention_warning(dict(r.f.attrs)),) if w]

    def header_lines(self, summary: dict) -> list[str]:
        """Lines after the counts line of the text summary."""
        return []

    def detail_lines(self, summary: dict) -> list[str]:
        """Lines after the best result."""
        return []

    def counts_extra(self, summary: dict) -> str:
        """Extra counts in the counts line (", 3 pruned")."""
        return ""

    # -- figures, exports, the notebook API ---------------------------------------------
    def figures(self, r: Loaded) -> list[Callable]:
        return []

    def exports(self, r: Loaded, out_dir: Path) -> list[Path]:
        """Files beyond the CSV tables and the two JSON files every kind gets."""
        return []

    def final_results(self, summary: dict) -> dict:
        """Keys of final_results.json beyond the common ones."""
        return {"n_tasks": summary["n_tasks"]}

    def params(self, r: Loaded, *, start: bool = False) -> np.ndarray:
        raise ValueError(f"{r.path}: a {r.kind} file has no parameter table")

    def frame_columns(self, r: Loaded, table: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The columns of Result.frame(table): flat, named after parameters where the kind
        knows them."""
        return _tables.flat_columns(rows)


def json_params(raw) -> dict:
    """A params_json cell as a dict ({} for an empty cell)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return json.loads(raw) if raw else {}
