"""Small formatting helpers shared by the summary and the kinds' report hooks."""

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
