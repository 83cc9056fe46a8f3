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

from . import tables as _tables
from .hooks import Loaded
from .text import finite


def export_all(path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write every export of the result file `path` into `out_dir`; return the paths written."""
    from .loaded import open_loaded
    from .summary import summarize
    with open_loaded(path) as r:
        return export_loaded(r, summarize(r, top=0), out_dir)


def export_loaded(r: Loaded, summary: dict, out_dir: str | Path) -> list[Path]:
    """The exports of an open result file whose summary is `summary`."""
    out_dir = _tables.make_dir(out_dir)
    written: list[Path] = []
    for name in r.tables:
        written.append(write_csv(r.f, name, out_dir / f"{name}.csv"))
    best = summary["best"] or {}
    written.append(_write_json(out_dir / "best_config.json", best.get("params", {})))
    written.append(_write_json(out_dir / "final_results.json",
                               final_results(r, summary)))
    written += r.hooks.exports(r, out_dir)
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


def final_results(r: Loaded, summary: dict) -> dict:
    """The seed's final_results.json plus hpcopt's counts and provenance."""
    best = summary["best"] or {}
    counts = summary["counts"]
    out = {
        "best_config": best.get("params", {}),
        "best_error": best.get("objective"),
        "best_value": best.get("objective"),
        "kind": summary["kind"],
        "campaign": summary["campaign"],
        "status": summary["status"],
        **r.hooks.final_results(summary),
        "n_ok": summary["n_ok"], "n_failed": summary["n_failed"],
        "n_pruned": summary["n_pruned"], "n_pending": summary["n_pending"],
        "counts": counts,
        "source": str(summary["path"]),
        "hpcopt_version": summary["hpcopt_version"],
        "created": summary["created"],
        "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": summary["seed"],
        "world_size": summary["world_size"],
        "config": r.config_text,
    }
    for extra in ("stderr", "chi2_reduced", "task_id", "replica", "round"):
        if extra in best:
            out[f"best_{extra}"] = best[extra]
    if r.hooks.section:
        out[r.hooks.section] = summary[r.hooks.section]
    if summary["failures"]:
        out["failures"] = summary["failures"]
    return out


def _write_json(target: Path, obj) -> Path:
    target.write_text(json.dumps(finite(obj), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return target
