"""What `--resume` accepts: one rule for every kind, on the canonical form of the config.

The canonical form is the kind's *parsed and validated* config (defaults filled in, paths
absolute, command-line overrides applied) as plain JSON data, without the keys that do
not change the campaign's results: ``[output]``, ``[slurm]``, logging and checkpoint
cadence.  Comments, whitespace, key order and spelling variants therefore never matter.

A resumed campaign must have the same canonical form as the one recorded in its result
file, except for the kind's *extendable* keys (``n_trials``, ``samples``, ``rounds``...),
which may grow: the campaign then continues to the new total.  Anything else is refused
with exit 2, naming every key that differs.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from ..errors import ResultFileError

#: how many differing keys a refusal lists before "and N more"
MAX_LISTED = 8


def plain(value: Any) -> Any:
    """`value` as JSON data: dataclasses as dicts, tuples as lists, paths as strings."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)                    # JSON has no inf/nan
    if hasattr(value, "item") and callable(value.item):      # numpy scalars
        return plain(value.item())
    return value


def canonical_text(canonical: dict) -> str:
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"))


def canonical_hash(canonical: dict) -> str:
    return hashlib.sha256(canonical_text(canonical).encode()).hexdigest()[:16]


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as {dotted key: leaf value}; lists are leaves (compared whole)."""
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def differences(old: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (old value, new value)} for every key whose value differs."""
    a, b = flatten(old), flatten(new)
    missing = object()
    out = {}
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            out[key] = (None if va is missing else va, None if vb is missing else vb)
    return out


def check_same_campaign(path: Path, old: dict, new: dict, extendable: tuple[str, ...],
                        source: str) -> dict[str, tuple[Any, Any]]:
    """Refuse (ResultFileError, exit 2) unless `new` equals `old` but for extendable keys
    that grew; return the extensions {key: (old, new)}."""
    diff = differences(old, new)
    extended = {k: v for k, v in diff.items() if k in extendable and _grew(*v)}
    refused = {k: v for k, v in diff.items() if k not in extended}
    if refused:
        listed = [f"{k} ({_show(a)} -> {_show(b)})" for k, (a, b) in list(refused.items())[:MAX_LISTED]]
        more = len(refused) - len(listed)
        shrunk = [k for k in refused if k in extendable]
        hint = (f"; {', '.join(shrunk)} may only grow (a larger value extends the campaign)"
                if shrunk else "")
        raise ResultFileError(
            f"{source}: --resume needs the campaign recorded in {path}, but the config differs "
            f"in {', '.join(listed)}{f' and {more} more' if more > 0 else ''}{hint}. "
            "Comments, layout, [output], [slurm] and logging keys may change; for a new "
            "campaign use another -o path, or --force to start over")
    return extended


def _grew(old: Any, new: Any) -> bool:
    if old is None:                      # e.g. time_budget: unlimited is not less
        return False
    if new is None:
        return True                      # a budget removed: unlimited
    try:
        return float(new) > float(old)
    except (TypeError, ValueError):
        return False


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
