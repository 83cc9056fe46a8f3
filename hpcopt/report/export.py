"""`hpcopt report FILE --export DIR`: CSV tables and the seed's JSON layout.

Writes into DIR:

* ``<table>.csv`` for every table of the file (finished rows only, see tables.py;
  array columns flattened to ``name_0, name_1, ...``; strings as text; status as names);
* ``best_config.json``: the best parameters (the seed's file of the same name);
* ``final_results.json``: ``best_config``, ``best_error`` (= ``best_value``), counts,
  status, kind, ... (the seed's layout plus hpcopt's keys);
* HPO only: ``results/trial_<n>.json`` per finished trial (``trial_id``, ``config``,
  ``error``/``value``, ``state``, ``additional_info``).

Every JSON file is strict JSON (NaN and infinities become null).
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
from pathlib import Path

import h5py
import numpy as np

from ..store import schema
from ..store.reader import attr_str
from . import tables as _tables
from .summary import finite, summarize_open


def export_all(path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write every export of the result file `path` into `out_dir`; return the paths written."""
    out_dir = _tables.make_dir(out_dir)
    written: list[Path] = []
    with _tables.reading(path) as f:
        summary = summarize_open(f, path, top=0)
        for name in _tables.table_names(f):
            written.append(write_csv(f, name, out_dir / f"{name}.csv"))
        best = summary["best"] or {}
        written.append(_write_json(out_dir / "best_config.json", best.get("params", {})))
        written.append(_write_json(out_dir / "final_results.json", final_results(f, summary)))
        if summary["kind"] == "hpo":
            written += write_trials(f, out_dir / "results")
    return written


def write_csv(f: h5py.File, name: str, target: Path) -> Path:
    """One table as CSV, streamed slice by slice (large sweeps never sit in memory at once)."""
    with open(target, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        header_done = False
        for rows in _tables.iter_rows(f, name):
            cols = _tables.flat_columns(rows)
            if not header_done:
                writer.writerow(list(cols))
                header_done = True
            writer.writerows(zip(*(_cells(c) for c in cols.values())))
        if not header_done:   # no finished rows yet: the header alone
            writer.writerow(list(_tables.flat_columns(f[name][:0])))
    return target


def _cells(col: np.ndarray) -> list:
    """Column values as CSV cells: floats with full precision (repr), bools as 0/1."""
    if col.dtype.kind == "f":
        return [repr(v) for v in col.tolist()]
    if col.dtype.kind == "b":
        return col.astype(np.int8).tolist()
    return col.tolist()


def final_results(f: h5py.File, summary: dict) -> dict:
    """The seed's final_results.json plus hpcopt's counts and provenance."""
    best = summary["best"] or {}
    kind = summary["kind"]
    counts = summary["counts"]
    out = {
        "best_config": best.get("params", {}),
        "best_error": best.get("objective"),
        "best_value": best.get("objective"),
        "kind": kind,
        "status": summary["status"],
        "n_trials" if kind == "hpo" else "n_tasks": summary["n_tasks"],
        "n_ok": summary["n_ok"], "n_failed": summary["n_failed"],
        "n_pruned": summary["n_pruned"], "n_pending": summary["n_pending"],
        "counts": counts,
        "source": str(summary["path"]),
        "hpcopt_version": summary["hpcopt_version"],
        "created": summary["created"],
        "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": summary["seed"],
        "world_size": summary["world_size"],
        "config": attr_str(f, schema.ATTR_CONFIG),
    }
    for extra in ("stderr", "chi2_reduced", "task_id", "replica", "round"):
        if extra in best:
            out[f"best_{extra}"] = best[extra]
    for section in ("sweep", "hpo", "temper"):
        if section in summary:
            out[section] = summary[section]
    if kind == "hpo":
        out["direction"] = summary["hpo"]["direction"]
    if summary["failures"]:
        out["failures"] = summary["failures"]
    return out


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


def write_trials(f: h5py.File, results_dir: Path) -> list[Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rows in _tables.iter_rows(f, schema.MAIN_TABLE["hpo"]):
        for row in rows:
            doc = trial_document(row)
            written.append(_write_json(results_dir / f"trial_{doc['trial_id']}.json", doc))
    return written


def _write_json(target: Path, obj) -> Path:
    target.write_text(json.dumps(finite(obj), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return target
