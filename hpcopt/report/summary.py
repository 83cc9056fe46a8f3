"""The summary of a result file: the DESIGN.md `report --json` object and its text form."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..store import schema
from ..store.reader import attr_json, attr_str, failures, open_result, scan_table


def _best_params(kind: str, ds, row) -> dict:
    if kind == "sweep":
        names = attr_json(ds, "param_names", [])
        return {n: float(v) for n, v in zip(names, row["x"])}
    if "params_json" in row.dtype.names:  # hpo: real parameter values as JSON text
        raw = row["params_json"]
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return {}


def summarize_file(path: str | Path, top: int = 10) -> dict:
    """Everything `hpcopt report` prints, as plain data."""
    with open_result(path) as f:
        kind = attr_str(f, schema.ATTR_KIND)
        ds = f[schema.MAIN_TABLE[kind]]
        direction = attr_str(ds, "direction", "minimize")
        scan = scan_table(ds, minimize=direction != "maximize")
        counts = scan["counts"]
        out = {
            "kind": kind, "status": attr_str(f, schema.ATTR_STATUS),
            "path": str(path),
            "n_tasks": int(ds.shape[0]), "n_ok": counts["ok"],
            "n_failed": counts["failed"] + counts["timeout"],
            "n_pending": counts["pending"], "n_pruned": counts["pruned"],
            "counts": counts,
            "hpcopt_version": attr_str(f, schema.ATTR_VERSION),
            "created": attr_str(f, schema.ATTR_CREATED),
            "world_size": int(f.attrs.get(schema.ATTR_WORLD, 0)),
            "seed": int(f.attrs.get(schema.ATTR_SEED, 0)),
            "best": None,
            "failures": failures(ds),
        }
        if "best" in f and "objective" in f["best"].attrs:
            g = f["best"]
            out["best"] = {"params": attr_json(g, "params", {}),
                           "objective": float(g.attrs["objective"])}
            for extra in ("stderr", "chi2_reduced", "task_id"):
                if extra in g.attrs:
                    v = g.attrs[extra]
                    out["best"][extra] = attr_json(g, extra) if extra == "stderr" else (
                        v.item() if hasattr(v, "item") else v)
        elif scan["best_row"] is not None and kind != "temper":  # running or killed: from rows
            row = scan["best_row"]
            out["best"] = {"params": _best_params(kind, ds, row),
                           "objective": float(row["objective"]), "task_id": int(row["task_id"])}
        out["top"] = _top_rows(kind, ds, top, direction)
    return out


def _top_rows(kind: str, ds, k: int, direction: str) -> list[dict]:
    if k <= 0 or "objective" not in ds.dtype.names:
        return []
    sign = -1.0 if direction == "maximize" else 1.0
    best: list[tuple[float, dict]] = []
    for a in range(0, ds.shape[0], 65536):
        rows = ds[a:a + 65536]
        ok = np.flatnonzero(rows["status"] == schema.OK)
        if not len(ok):
            continue
        order = ok[np.argsort(sign * rows["objective"][ok], kind="stable")[:k]]
        for i in order:
            best.append((sign * float(rows["objective"][i]),
                         {"task_id": int(rows["task_id"][i]),
                          "objective": float(rows["objective"][i]),
                          "params": _best_params(kind, ds, rows[i])}))
    best.sort(key=lambda t: t[0])
    return [d for _, d in best[:k]]


def contract_json(summary: dict) -> dict:
    """The `report --json` object (DESIGN.md) plus a few extra keys; strict JSON (nan -> null)."""
    keep = ("kind", "status", "n_tasks", "n_ok", "n_failed", "n_pending", "n_pruned", "best",
            "hpcopt_version", "created", "world_size", "seed", "path")
    out = {k: summary[k] for k in keep}
    out["failures"] = [{"message": m, "count": c} for m, c in summary["failures"]]
    return _finite(out)


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def format_text(summary: dict) -> str:
    s = summary
    lines = [f"{s['path']}: {s['kind']} campaign, {s['status']}",
             f"  tasks: {s['n_tasks']} ({s['n_ok']} ok, {s['n_failed']} failed, "
             f"{s['n_pruned']} pruned, {s['n_pending']} pending); written by hpcopt "
             f"{s['hpcopt_version']} on {s['world_size']} rank(s), seed {s['seed']}"]
    best = s["best"]
    if best:
        lines.append(f"  best objective: {best['objective']:.10g}"
                     + (f" (reduced chi2 {best['chi2_reduced']:.6g})"
                        if isinstance(best.get("chi2_reduced"), float) else ""))
        errs = best.get("stderr") or {}
        for name, value in best["params"].items():
            err = f" +/- {errs[name]:.3g}" if name in errs else ""
            lines.append(f"    {name} = {value!r}{err}" if not isinstance(value, float)
                         else f"    {name} = {value:.10g}{err}")
    else:
        lines.append("  best: none yet")
    if s["top"]:
        lines.append(f"  top {len(s['top'])}:")
        for r in s["top"]:
            ps = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in r["params"].items())
            lines.append(f"    #{r['task_id']:<6} {r['objective']:.8g}  {ps}")
    if s["failures"]:
        lines.append("  failures by error:")
        for msg, count in s["failures"]:
            lines.append(f"    {count:5d} x {msg}")
    return "\n".join(lines)
