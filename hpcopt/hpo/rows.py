"""What one HPO trial row holds in the result file (the store module owns the dtypes).

:func:`trial_row_fields` names the columns and their kinds; :func:`trial_row` fills
one row from a :class:`TrialRecord` (plus the rank that ran it, which only the campaign
knows); :func:`params_from_row` reads the real parameter values back. Kinds:
"int" (int64), "float" (float64, NaN when missing), "str" (variable-length UTF-8;
JSON text where the name ends in ``_json``), "json" (JSON text of any value).

Every parameter has a ``p_<name>`` column typed by :func:`param_kind`: floats as float64,
ints as int64 (float64 with NaN when the parameter is conditional), categorical and fixed
values as what they are: string choices as text, numeric choices as numbers, anything
else (lists, tables, booleans, mixed choices) as JSON text.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..store.dtypes import INT_MISSING, PARAM_PREFIX, TRIAL_FIELDS
from .space import Param, SearchSpace
from .trials import STATES, TrialRecord

PARAM_COLUMN_PREFIX = PARAM_PREFIX

# (name, kind, meaning) of the fixed columns, in order; task_id first (docs/result-files.md)
BASE_FIELDS = TRIAL_FIELDS


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def param_kind(p: Param) -> str:
    """How parameter `p` is stored in its ``p_<name>`` column (a row kind)."""
    if p.kind in ("uniform", "loguniform"):
        return "float"
    if p.kind == "int":
        return "int" if p.when is None else "float"
    values = (p.value,) if p.kind == "fixed" else p.choices
    if all(isinstance(v, str) for v in values):
        return "str"
    if all(_number(v) for v in values):
        return "int" if p.when is None and all(isinstance(v, int) for v in values) else "float"
    return "json"


def trial_row_fields(space: SearchSpace) -> list[tuple[str, str]]:
    """(column name, kind) for every column: the base fields, then ``p_<name>`` for each
    parameter (kind: :func:`param_kind`)."""
    fields = [(name, kind) for name, kind, _ in BASE_FIELDS]
    fields += [(PARAM_COLUMN_PREFIX + p.name, param_kind(p)) for p in space.params]
    return fields


def param_cell(p: Param, value: Any) -> Any:
    """The ``p_<name>`` cell of `value` (None: the parameter is inactive)."""
    kind = param_kind(p)
    if kind == "float":
        return math.nan if value is None else float(value)
    if kind == "int":
        return INT_MISSING if value is None else int(value)
    if value is None:
        return ""
    return value if kind == "str" else json.dumps(value)


def trial_row(record: TrialRecord, space: SearchSpace, rank: int = -1) -> dict[str, Any]:
    """One row (column name -> Python value) for `record`."""
    assert record.state in STATES
    steps = [s for s, _ in record.intermediate]
    row: dict[str, Any] = {
        "task_id": record.number,
        "state": record.state,
        "value": math.nan if record.value is None else float(record.value),
        "params_json": params_to_json(record.params),
        "attempt": record.attempt,
        "retry_of": -1 if record.retry_of is None else int(record.retry_of),
        "retried": int(record.retried),
        "error": record.error or "",
        "rank": rank,
        "worker": record.worker,
        "started": record.started,
        "duration": record.duration,
        "n_steps": len(steps),
        "last_step": max(steps) if steps else -1,
        "intermediate_json": json.dumps([[s, v] for s, v in record.intermediate]),
        "info_json": json.dumps(record.info, default=str) if record.info else "",
    }
    for p in space.params:
        row[PARAM_COLUMN_PREFIX + p.name] = param_cell(p, record.params.get(p.name))
    return row


def params_to_json(params: dict[str, Any]) -> str:
    """Real params as JSON text (keeps the space's order)."""
    return json.dumps(params)


def params_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """Real params back from a row (bytes or str), e.g. for best_config.json."""
    text = row["params_json"]
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return json.loads(text)
