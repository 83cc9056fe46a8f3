"""Small formatting helpers shared by the summary and the kinds' report hooks, and the
words the run summaries share with `hpcopt report` (one wording for both)."""

from __future__ import annotations

import json
import math

import numpy as np


def num(v, digits: int = 6) -> str:
    """A value for a text table: floats to `digits` significant digits, lists as JSON."""
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


#: a parameter whose uncertainty is nan: the residuals do not depend on it at the best fit
NOT_DETERMINED = "not determined by the data"


def outcome_counts(ok: int, failed: int, timeout: int, pending: int, extra: str = "") -> str:
    """"30 ok, 2 failed, 1 timed out, 0 pending": timeouts apart from failures (`extra`,
    e.g. ", 3 pruned", goes before the pending count)."""
    return (f"{ok} ok, {failed} failed" + (f", {timeout} timed out" if timeout else "")
            + extra + f", {pending} pending")


def param_lines(params: dict, stderr: dict | None, *, singular: bool = False,
                indent: str = "  ") -> list[str]:
    """One line per parameter: value, then "+/- error", "(not determined by the data)"
    or "(fixed)" (when others have errors); a last line when the Jacobian is singular."""
    errs = stderr or {}
    lines = []
    for name, value in params.items():
        if name in errs:
            err = errs[name]
            note = (f" +/- {err:.3g}" if isinstance(err, (int, float)) and math.isfinite(err)
                    else f" ({NOT_DETERMINED})")
        else:
            note = " (fixed)" if errs else ""
        shown = f"{value:.10g}" if isinstance(value, float) else json.dumps(value)
        lines.append(f"{indent}{name} = {shown}{note}")
    if singular:
        lines.append(f"{indent}(the Jacobian is singular at the best point: uncertainties are "
                     "not reliable)")
    return lines


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


def named_columns(task_ids: np.ndarray, columns: dict[str, np.ndarray]) -> np.ndarray:
    """A structured array: task_id, then `columns` in order."""
    dtype = [("task_id", "<i8")] + [(n, c.dtype) for n, c in columns.items()]
    out = np.zeros(len(task_ids), dtype=dtype)
    out["task_id"] = task_ids
    for n, c in columns.items():
        out[n] = c
    return out
