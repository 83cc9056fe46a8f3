"""The summary of a result file: the `report --json` object and its text form.

Works on complete, running and interrupted files: where the campaign has not yet
written its end-of-run records (the ``best`` group, the temper pair/replica tables),
the same numbers are taken from the rows written so far.  What differs between kinds
comes from the kind's report hooks (report/hooks_<kind>.py).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..store import schema
from ..store.reader import SCAN_ROWS, attr_str, failure_groups
from . import tables as _tables
from .hooks import Loaded
from .text import finite, num, outcome_counts, param_lines

#: keys of the `report --json` object (docs/report.md)
JSON_KEYS = ("kind", "campaign", "status", "n_tasks", "n_ok", "n_failed", "n_pending",
             "n_pruned", "counts", "best", "top", "failures", "warnings", "hpcopt_version",
             "created", "world_size", "seed", "path", "sweep", "temper", "hpo")


# -- the summary -------------------------------------------------------------------------------

def summarize_file(path: str | Path, top: int = 10) -> dict:
    """Everything `hpcopt report` prints, as plain data."""
    from .loaded import open_loaded
    with open_loaded(path) as r:
        return summarize(r, top)


def summarize(r: Loaded, top: int = 10) -> dict:
    """The summary of an open result file (see :func:`summarize_file`)."""
    hooks, f = r.hooks, r.f
    counts = r.scan["counts"]
    n_tasks, n_pending = hooks.task_counts(r, counts)
    out = {
        "kind": r.family, "campaign": r.kind, "status": r.status, "path": str(r.path),
        "n_tasks": n_tasks, "n_ok": counts["ok"],
        "n_failed": counts["failed"] + counts["timeout"],
        "n_pending": n_pending, "n_pruned": counts["pruned"], "counts": counts,
        "hpcopt_version": attr_str(f, schema.ATTR_VERSION),
        "created": attr_str(f, schema.ATTR_CREATED),
        "world_size": _int_attr(f, schema.ATTR_WORLD),
        "seed": _int_attr(f, schema.ATTR_SEED),
        "best": hooks.best(r),
        "failures": failure_groups(r.main),
        "top": _top_rows(r, top),
        "warnings": hooks.warnings(r),
    }
    if hooks.section:
        out[hooks.section] = hooks.details(r)
    return out


def _int_attr(f: h5py.File, name: str) -> int:
    try:
        return int(f.attrs.get(name, 0))
    except (TypeError, ValueError):
        return 0


def _top_rows(r: Loaded, k: int) -> list[dict]:
    ds = r.main
    if k <= 0 or "objective" not in ds.dtype.names:
        return []
    sign = -1.0 if r.direction == "maximize" else 1.0
    best: list[tuple[float, int]] = []
    for a in range(0, ds.shape[0], SCAN_ROWS):     # two columns only, then the k rows
        rows = ds.fields(["status", "objective"])[a:a + SCAN_ROWS]
        ok = np.flatnonzero((rows["status"] == schema.OK) & ~np.isnan(rows["objective"]))
        if not len(ok):
            continue
        order = ok[np.argsort(sign * rows["objective"][ok], kind="stable")[:k]]
        best += [(sign * float(rows["objective"][i]), a + int(i)) for i in order]
    best.sort(key=lambda t: t[0])
    out = []
    for _, i in best[:k]:
        row = _tables.row_at(r.f, r.main_table, i)
        out.append({"task_id": int(row["task_id"]), "objective": float(row["objective"]),
                    "params": r.hooks.row_params(r, row)})
    return out


# -- output ------------------------------------------------------------------------------------

def contract_json(summary: dict) -> dict:
    """The `report --json` object (docs/report.md); strict JSON (nan -> null)."""
    return finite({k: summary[k] for k in JSON_KEYS if k in summary})


def format_text(summary: dict, hooks=None) -> str:
    """The text summary; `hooks`: the kind's report hooks (default: the summary's kind's)."""
    if hooks is None:
        from ..campaign.registry import get
        hooks = get(summary["campaign"]).report
    s = summary
    c = s["counts"]
    lines = [f"{s['path']}: {s['kind']} campaign, {s['status']}",
             f"  {hooks.noun}: {s['n_tasks']} ("
             + outcome_counts(s["n_ok"], c["failed"], c["timeout"], s["n_pending"],
                              hooks.counts_extra(s))
             + f"); hpcopt {s['hpcopt_version']}, "
               f"{s['world_size']} rank(s), seed {s['seed']}, created {s['created']}"]
    lines += [f"  warning: {w}" for w in s.get("warnings", [])]
    lines += hooks.header_lines(s)
    lines += _best_lines(s, hooks)
    lines += hooks.detail_lines(s)
    if s["top"]:
        lines += _top_lines(s["top"])
    if s["failures"]:
        lines.append("  failures by error:")
        for g in s["failures"]:
            ex = f"   (e.g. {g['example']})" if g["example"] != g["message"] else ""
            lines.append(f"    {g['count']:6d} x {g['message']}{ex}")
    return "\n".join(lines)


def _best_lines(s: dict, hooks) -> list[str]:
    best = s["best"]
    if not best:
        return ["  best: none yet"]
    extra = ""
    red = best.get("chi2_reduced")
    if isinstance(red, float) and np.isfinite(red):
        extra += f" (reduced chi2 {red:.6g})"
    if "task_id" in best:
        extra += f", task {best['task_id']}"
    if "round" in best:
        extra += f", replica {best.get('replica')}, round {best['round']}"
    lines = [f"  {hooks.best_label}: {best['objective']:.10g}{extra}"]
    params = best["params"]
    if "spins" in params:
        lines.append(f"    (an Ising configuration of {np.size(params['spins'])} spins)")
        return lines
    return lines + param_lines(params, best.get("stderr"),
                               singular=bool(best.get("jacobian_singular")), indent="    ")


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
            cells.append(f"{num(v, 6):>{w}}")
        lines.append(f"    {r['task_id']:>7} {r['objective']:>14.8g}  " + " ".join(cells))
    return lines
