"""The HPO and PBT kinds' report hooks: the study line, trial parameters, per-trial JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from ..store import schema
from ..store.dtypes import PARAM_PREFIX
from ..store.reader import attr_str
from . import tables as _tables
from .hooks import Loaded, ReportHooks, json_params
from .text import finite, named_columns


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
    return named_columns(rows["task_id"], cols)


def trial_document(row: np.void) -> dict:
    """One finished HPO trial in the seed's results/trial_<n>.json layout."""
    params = json.loads(row["params_json"]) if row["params_json"] else {}
    value = float(row["objective"])
    intermediate = json.loads(row["intermediate_json"]) if row["intermediate_json"] else []
    info = json.loads(row["info_json"]) if row["info_json"] else {}
    state = row["state"] or schema.STATUS_BY_CODE.get(int(row["status"]), "")
    return {
        "trial_id": int(row["task_id"]),
        "config": params,
        "error": value,
        "value": value,
        "state": state,
        "additional_info": {
            "training_time": float(row["duration"]),
            "duration": float(row["duration"]),
            "started": float(row["started"]),
            "rank": int(row["rank"]),
            "worker": row["worker"],
            "attempt": int(row["attempt"]),
            "retry_of": int(row["retry_of"]),
            "error_message": row["error"],
            "n_steps": int(row["n_steps"]),
            "intermediate_values": intermediate,
            "info": info,
        },
    }


def write_trials(f: h5py.File, table: str, results_dir: Path) -> list[Path]:
    """results/trial_<n>.json for every finished trial."""
    results_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rows in _tables.iter_rows(f, table):
        for row in rows:
            doc = trial_document(row)
            target = results_dir / f"trial_{doc['trial_id']}.json"
            target.write_text(json.dumps(finite(doc), indent=2, allow_nan=False) + "\n",
                              encoding="utf-8")
            written.append(target)
    return written


def _param_name(column: str, columns) -> str:
    name = column[len(PARAM_PREFIX):]
    return name if column.startswith(PARAM_PREFIX) and name not in columns else column


class HpoReport(ReportHooks):
    noun = "trials"
    section = "hpo"

    def task_counts(self, r: Loaded, counts: dict) -> tuple[int, int]:
        # a growable table holds spare pending rows: the study size is the finished trials
        return int(sum(counts.values()) - counts["pending"]), 0

    def details(self, r: Loaded) -> dict:
        out = {k: attr_str(r.main, k) for k in ("study_name", "storage", "sampler", "pruner",
                                                 "direction")}
        out["n_trials_budget"] = int(r.config_value("hpo", "n_trials", 0) or 0)
        return out

    def row_params(self, r: Loaded, row) -> dict:
        return json_params(row["params_json"]) if "params_json" in row.dtype.names else {}

    def counts_extra(self, s: dict) -> str:
        return f", {s['n_pruned']} pruned"

    def header_lines(self, s: dict) -> list[str]:
        d = s["hpo"]
        return [f"  study {d['study_name']!r} in {d['storage']}; sampler {d['sampler']}, "
                f"pruner {d['pruner']}, {d['direction']}"]

    def figures(self, r: Loaded) -> list[Callable]:
        from . import plots_hpo
        return list(plots_hpo.FIGURES)

    def exports(self, r: Loaded, out_dir: Path) -> list[Path]:
        return write_trials(r.f, r.main_table, out_dir / "results")

    def final_results(self, s: dict) -> dict:
        return {"n_trials": s["n_tasks"], "direction": s["hpo"]["direction"]}

    def params(self, r: Loaded, *, start: bool = False) -> np.ndarray:
        return hpo_params(_tables.read_table(r.f, r.main_table))

    def frame_columns(self, r: Loaded, table: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """``p_<name>`` columns under the parameter's name (a name that another column has
        keeps its prefix)."""
        cols = super().frame_columns(r, table, rows)
        if table != r.main_table:
            return cols
        return {_param_name(c, cols): v for c, v in cols.items()}


class PbtReport(HpoReport):
    noun = "segments"

    def figures(self, r: Loaded) -> list[Callable]:
        from ..hpo.pbt import plot
        return super().figures(r) + list(plot.FIGURES)     # and the population's lineage


HPO_REPORT = HpoReport()
PBT_REPORT = PbtReport()
