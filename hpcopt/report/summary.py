"""The summary of a result file: the `report --json` object of docs/report.md and its text form.

Works on complete, running and interrupted files: where the campaign has not yet
written its end-of-run records (the ``best`` group, the temper pair/replica tables),
the same numbers are taken from the rows written so far.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path

import h5py
import numpy as np

from ..store import schema
from ..store.reader import attr_json, attr_str, scan_table
from . import tables as _tables

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


# -- best --------------------------------------------------------------------------------------

def row_params(kind: str, ds: h5py.Dataset, row) -> dict:
    """The parameters of one sweep/hpo row (real values)."""
    if kind == "sweep":
        names = attr_json(ds, "param_names", [])
        return {n: float(v) for n, v in zip(names, row["x"])}
    if "params_json" in row.dtype.names:  # hpo: real parameter values as JSON text
        raw = row["params_json"]
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        return json.loads(raw) if raw else {}
    return {}


def best_of(f: h5py.File, kind: str, scan: dict | None = None) -> dict | None:
    """The best result: the campaign's ``best`` group, or (running/killed) the best row so far.

    A temper file reports the lowest energy seen (params: the state, once the run wrote it).
    """
    g = f.get("best")
    if g is not None and "objective" in g.attrs:
        attrs = _tables.attrs_of(g)
        best = {"params": attrs.pop("params", {}) or {}, "objective": float(attrs.pop("objective"))}
        best.update(attrs)
        return best
    ds = f[schema.MAIN_TABLE[kind]]
    if kind == "temper":
        energies = [rows["best_energy"] for rows in _tables.iter_rows(f, "rounds",
                                                                       fields=["best_energy"])]
        e = np.concatenate(energies) if energies else np.zeros(0)
        e = e[np.isfinite(e)]
        return {"params": {}, "objective": float(e.min())} if len(e) else None
    if scan is None:
        scan = scan_table(ds, minimize=attr_str(ds, "direction", "minimize") != "maximize")
    row = scan["best_row"]
    if row is None:
        return None
    return {"params": row_params(kind, ds, row), "objective": float(row["objective"]),
            "task_id": int(row["task_id"])}


# -- failures ----------------------------------------------------------------------------------

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
    for a in range(0, ds.shape[0], _tables.SLICE_ROWS):
        rows = ds.fields(["status", column])[a:a + _tables.SLICE_ROWS]
        bad = (rows["status"] == schema.FAILED) | (rows["status"] == schema.TIMEOUT)
        for raw, status in zip(rows[column][bad], rows["status"][bad]):
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            text = text.strip().splitlines()[0] if text.strip() else (
                "timed out" if status == schema.TIMEOUT else "(no message)")   # not tracebacks
            key = _NUMBER.sub("#", text)
            entry = groups.setdefault(key, [0, text])
            entry[0] += 1
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
    return [{"message": k, "count": c, "example": ex} for k, (c, ex) in ordered]


# -- the summary -------------------------------------------------------------------------------

def summarize_file(path: str | Path, top: int = 10) -> dict:
    """Everything `hpcopt report` prints, as plain data."""
    with _tables.reading(path) as f:
        return summarize_open(f, path, top)


def summarize_open(f: h5py.File, path: str | Path, top: int = 10) -> dict:
    kind = attr_str(f, schema.ATTR_KIND)
    ds = f[schema.MAIN_TABLE[kind]]
    direction = attr_str(ds, "direction", "minimize")
    scan = scan_table(ds, minimize=direction != "maximize")
    counts = scan["counts"]
    out = {
        "kind": kind, "status": attr_str(f, schema.ATTR_STATUS), "path": str(path),
        "n_tasks": int(ds.shape[0]), "n_ok": counts["ok"],
        "n_failed": counts["failed"] + counts["timeout"],
        "n_pending": counts["pending"], "n_pruned": counts["pruned"], "counts": counts,
        "hpcopt_version": attr_str(f, schema.ATTR_VERSION),
        "created": attr_str(f, schema.ATTR_CREATED),
        "world_size": int(f.attrs.get(schema.ATTR_WORLD, 0)),
        "seed": int(f.attrs.get(schema.ATTR_SEED, 0)),
        "best": best_of(f, kind, scan),
        "failures": failure_groups(ds),
        "top": _top_rows(kind, ds, top, direction),
    }
    if kind == "hpo":
        # a growable table holds spare pending rows: the study size is the finished trials
        out["n_tasks"] = int(sum(counts.values()) - counts["pending"])
        out["n_pending"] = 0
        out["hpo"] = {k: attr_str(ds, k) for k in ("study_name", "storage", "sampler", "pruner",
                                                   "direction")}
        out["hpo"]["n_trials_budget"] = int(_config_value(f, "hpo", "n_trials", 0) or 0)
    elif kind == "sweep":
        out["sweep"] = {k: attr_str(ds, k) for k in ("model", "objective_function", "search",
                                                     "local")}
        out["sweep"]["param_names"] = attr_json(ds, "param_names", [])
    else:
        out["temper"] = temper_details(f)
    from ..models.xpcs_convention import convention_warning   # XPCS fits of the first convention
    out["warnings"] = [w for w in (convention_warning(dict(f.attrs)),) if w]
    return out


def _top_rows(kind: str, ds: h5py.Dataset, k: int, direction: str) -> list[dict]:
    if k <= 0 or "objective" not in ds.dtype.names:
        return []
    sign = -1.0 if direction == "maximize" else 1.0
    best: list[tuple[float, dict]] = []
    for a in range(0, ds.shape[0], _tables.SLICE_ROWS):
        rows = ds[a:a + _tables.SLICE_ROWS]
        ok = np.flatnonzero((rows["status"] == schema.OK) & ~np.isnan(rows["objective"]))
        if not len(ok):
            continue
        order = ok[np.argsort(sign * rows["objective"][ok], kind="stable")[:k]]
        for i in order:
            best.append((sign * float(rows["objective"][i]),
                         {"task_id": int(rows["task_id"][i]),
                          "objective": float(rows["objective"][i]),
                          "params": row_params(kind, ds, rows[i])}))
    best.sort(key=lambda t: t[0])
    return [d for _, d in best[:k]]


def _config_value(f: h5py.File, table: str, key: str, default):
    try:
        return tomllib.loads(attr_str(f, schema.ATTR_CONFIG)).get(table, {}).get(key, default)
    except (tomllib.TOMLDecodeError, AttributeError):
        return default


def temper_details(f: h5py.File) -> dict:
    """Ladder, neighbour acceptance, round trips, log Z ratio: from the end-of-run tables when
    written, otherwise from the rounds so far (after burn-in)."""
    finished = _tables.FINAL_MARK in f.attrs
    out: dict = {"rounds_done": 0, "n_replicas": int(f["rounds"].attrs.get("n_replicas", 0)),
                 "problem": attr_str(f["rounds"], "problem"), "from_rounds": not finished,
                 "log_z_ratio": float(f.attrs.get("log_z_ratio", math.nan)),
                 "n_samples": sum(len(r) for r in _tables.iter_rows(f, "samples",
                                                                     fields=["task_id"]))
                 if "samples" in f else 0}
    if finished:
        pairs = _tables.read_table(f, "pairs")
        reps = _tables.read_table(f, "replicas")
        out["rounds_done"] = int(f.attrs[_tables.FINAL_MARK])
        out["temperatures"] = _tables.decode_attr("temperatures", f.attrs.get("temperatures", "[]"))
        out["pairs"] = [{"t_low": float(p["t_low"]), "t_high": float(p["t_high"]),
                         "acceptance": float(p["acceptance"]), "attempted": int(p["attempted"])}
                        for p in pairs]
        out["round_trips"] = [int(v) for v in reps["round_trips"]]
        out["mean_round_trip"] = [float(v) for v in reps["mean_round_trip"]]
        return out
    fields = [c for c in ("task_id", "slot", "temperature", "swap_attempted", "swap_accepted")
              if c in f["rounds"].dtype.names]
    rounds = _tables.read_table(f, "rounds", fields=fields)
    out["rounds_done"] = len(rounds)
    burn_in = int(_config_value(f, "temper", "burn_in", 0) or 0)
    after = rounds[rounds["task_id"] >= burn_in]
    temps = []
    if len(rounds):
        t = rounds["temperature"][-1]
        temps = np.sort(t).tolist()
    out["temperatures"] = temps
    if "swap_attempted" in fields and len(after):
        att = after["swap_attempted"].sum(axis=0)
        acc = after["swap_accepted"].sum(axis=0)
        out["pairs"] = [{"t_low": temps[k], "t_high": temps[k + 1],
                         "acceptance": float(acc[k] / att[k]) if att[k] else math.nan,
                         "attempted": int(att[k])} for k in range(len(att))]
    else:
        out["pairs"] = []
    if len(after) and after["slot"].shape[1] > 1:
        from ..temper.stats import round_trips_from_slots
        trips = round_trips_from_slots(after["slot"], int(after["task_id"][0]))
        out["round_trips"] = trips.count.tolist()
        out["mean_round_trip"] = trips.mean_time().tolist()
    else:
        out["round_trips"], out["mean_round_trip"] = [], []
    return out


# -- output ------------------------------------------------------------------------------------

def contract_json(summary: dict) -> dict:
    """The `report --json` object (docs/report.md) plus a few extra keys; strict JSON (nan -> null)."""
    keep = ("kind", "status", "n_tasks", "n_ok", "n_failed", "n_pending", "n_pruned", "counts",
            "best", "top", "failures", "hpcopt_version", "created", "world_size", "seed", "path",
            "sweep", "temper", "hpo", "warnings")
    return finite({k: summary[k] for k in keep if k in summary})


def finite(obj):
    """A copy with nan/inf replaced by None and numpy scalars as Python values (strict JSON)."""
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite(obj.tolist())
    return obj


def _num(v, digits: int = 6) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


def format_text(summary: dict) -> str:
    s = summary
    c = s["counts"]
    what = {"sweep": "starts", "temper": "rounds", "hpo": "trials"}[s["kind"]]
    lines = [f"{s['path']}: {s['kind']} campaign, {s['status']}",
             f"  {what}: {s['n_tasks']} ({s['n_ok']} ok, {c['failed']} failed"
             + (f", {c['timeout']} timed out" if c["timeout"] else "")
             + (f", {s['n_pruned']} pruned" if s["kind"] == "hpo" else "")
             + f", {s['n_pending']} pending); hpcopt {s['hpcopt_version']}, "
               f"{s['world_size']} rank(s), seed {s['seed']}, created {s['created']}"]
    if s["kind"] == "sweep":
        d = s["sweep"]
        target = f"model {d['model']}" if d["model"] else f"objective {d['objective_function']}"
        lines.append(f"  {target}; search {d['search']}; local {d['local']}")
    elif s["kind"] == "hpo":
        d = s["hpo"]
        lines.append(f"  study {d['study_name']!r} in {d['storage']}; sampler {d['sampler']}, "
                     f"pruner {d['pruner']}, {d['direction']}")
    lines += [f"  warning: {w}" for w in s.get("warnings", ())]
    lines += _best_lines(s)
    if s["kind"] == "temper":
        lines += _temper_lines(s["temper"])
    if s["top"]:
        lines += _top_lines(s["top"])
    if s["failures"]:
        lines.append("  failures by error:")
        for g in s["failures"]:
            ex = f"   (e.g. {g['example']})" if g["example"] != g["message"] else ""
            lines.append(f"    {g['count']:6d} x {g['message']}{ex}")
    return "\n".join(lines)


def _best_lines(s: dict) -> list[str]:
    best = s["best"]
    if not best:
        return ["  best: none yet"]
    label = "lowest energy" if s["kind"] == "temper" else "best objective"
    extra = ""
    red = best.get("chi2_reduced")
    if isinstance(red, float) and math.isfinite(red):
        extra += f" (reduced chi2 {red:.6g})"
    if "task_id" in best:
        extra += f", task {best['task_id']}"
    if s["kind"] == "temper" and "round" in best:
        extra += f", replica {best.get('replica')}, round {best['round']}"
    lines = [f"  {label}: {best['objective']:.10g}{extra}"]
    errs = best.get("stderr") or {}
    params = best["params"]
    if "spins" in params:
        lines.append(f"    (an Ising configuration of {np.size(params['spins'])} spins)")
        return lines
    for name, value in params.items():
        err = f" +/- {errs[name]:.3g}" if name in errs else (" (fixed)" if errs else "")
        lines.append(f"    {name} = {value:.10g}{err}" if isinstance(value, float)
                     else f"    {name} = {json.dumps(value)}")
    if best.get("jacobian_singular"):
        lines.append("    (the Jacobian is singular at the best point: uncertainties are "
                     "not reliable)")
    return lines


def _temper_lines(t: dict) -> list[str]:
    src = " (from the rounds so far)" if t["from_rounds"] else ""
    lines = [f"  problem {t['problem']}; {t['n_replicas']} replicas; {t['rounds_done']} rounds "
             f"done; {t['n_samples']} T_min samples stored"]
    if t.get("temperatures"):
        lines.append("  temperatures: " + ", ".join(f"{v:.4g}" for v in t["temperatures"]))
    if t["pairs"]:
        lines.append(f"  neighbour swap acceptance{src}:")
        for p in t["pairs"]:
            lines.append(f"    T {p['t_low']:.4g} <-> {p['t_high']:.4g}: {_num(p['acceptance'], 3)}"
                         f" of {p['attempted']} attempts")
    if t["round_trips"]:
        trips = t["round_trips"]
        lines.append(f"  round trips T_min -> T_max -> T_min{src}: {sum(trips)} in total; per "
                     f"replica " + ", ".join(str(n) for n in trips))
    z = t["log_z_ratio"]
    if isinstance(z, float) and math.isfinite(z):
        lines.append(f"  log Z(T_min) - log Z(T_max) (thermodynamic integration): {z:.6g}")
    return lines


def _top_lines(top: list[dict]) -> list[str]:
    names: list[str] = []
    for r in top:
        names += [n for n in r["params"] if n not in names]
    width = [max(11, len(n)) for n in names]
    head = f"    {'task':>7} {'objective':>14}  " + " ".join(
        f"{n:>{w}}" for n, w in zip(names, width))
    lines = [f"  top {len(top)}:", head.rstrip()]
    for r in top:
        cells = []
        for n, w in zip(names, width):
            v = r["params"].get(n, "")
            cells.append(f"{_num(v, 6):>{w}}")
        lines.append(f"    {r['task_id']:>7} {r['objective']:>14.8g}  " + " ".join(cells))
    return lines
