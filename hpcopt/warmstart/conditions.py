"""Experimental conditions of a fit, and finished sweep result files into the history.

Conditions are named scalars: the data file's own (XPCS: scalar root attrs besides
dt and h, plus q; curve .h5/.npz: scalar attrs/arrays) overridden by ``[warmstart]
conditions``.  A sweep result file carries them as the root attr ``conditions``
(JSON object), which :func:`add_result_file` reads; files without it (older
files) get them from their stored config and its data file.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Mapping

from ..errors import DataError, ResultFileError
from .history import add_fit, clean_conditions

#: root attribute of a sweep result file holding the fit's conditions (JSON object)
ATTR_CONDITIONS = "conditions"
#: XPCS file attrs that describe the sampling, not the sample
_XPCS_NOT_CONDITIONS = ("dt", "h")


def data_conditions(model: str | None, data_path: str | Path | None,
                    data_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Named scalars of a data file ({} for NIST .dat files, objectives and missing paths)."""
    if not model or data_path is None:
        return {}
    path = Path(data_path)
    if model.lower().startswith("xpcs:"):
        return _h5_root_scalars(path, drop=_XPCS_NOT_CONDITIONS)
    if model.lower().startswith("nist:") or path.suffix.lower() == ".dat":
        return {}  # NIST metadata (certified values) are not experimental conditions
    from ..models.data import load_curve
    return clean_conditions(load_curve(path, dict(data_options or {})).meta)


def problem_conditions(problem) -> dict[str, Any] | None:
    """Conditions of an already loaded XPCS problem (no file I/O); None if it has none."""
    data = getattr(problem, "data", None)
    if data is None or not hasattr(data, "conditions"):
        return None
    out = clean_conditions(data.conditions)
    if getattr(data, "q", None) is not None:
        out.setdefault("q", float(data.q))
    return out


def fit_conditions(extra: Mapping[str, float] | None, model: str | None,
                   data_path: str | Path | None, data_options: Mapping[str, Any] | None = None,
                   problem=None) -> dict[str, Any]:
    """The conditions of a fit: the data's (from `problem` if loaded) updated by `extra`."""
    found = problem_conditions(problem) if problem is not None else None
    if found is None:
        found = data_conditions(model, data_path, data_options)
    return {**found, **clean_conditions(extra)}


def _h5_root_scalars(path: Path, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    import h5py
    import numpy as np
    try:
        with h5py.File(path, "r", locking=False) as f:
            attrs = dict(f.attrs.items())
    except OSError as exc:
        raise DataError(f"cannot read as HDF5: {exc}", path=str(path)) from None
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if k in drop:
            continue
        if isinstance(v, (bytes, str)):
            out[k] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        elif np.ndim(v) == 0 and np.asarray(v).dtype.kind in "biuf" and np.isfinite(v):
            out[k] = float(v)
    return out


# --------------------------------------------------------------------------- result files
def add_result_file(history_path: str | Path, result_h5: str | Path, *,
                    conditions: Mapping[str, Any] | None = None,
                    allow_incomplete: bool = False) -> int:
    """Add the best fit of a finished sweep result file to the history; return the record id.

    Reads the ``best`` group (params, objective, chi2_reduced), the ``tasks`` table attrs
    (model or objective function) and the root attr ``conditions``; `conditions` given
    here override those.  A file that is not complete is refused unless
    `allow_incomplete`.  Adding the same file twice records it once.
    """
    from ..store.reader import attr_json, attr_str, open_result
    from ..store import schema

    path = Path(result_h5).resolve()
    with open_result(path) as f:
        kind, status = attr_str(f, "kind"), attr_str(f, "status")
        if kind != schema.SWEEP:
            raise ResultFileError(f"{path}: holds a {kind!r} campaign; only sweep fits go into "
                                  "the history")
        if status != "complete" and not allow_incomplete:
            raise ResultFileError(f"{path}: the sweep is {status}, not complete (its best fit "
                                  "may not be final)")
        best = f["best"] if "best" in f else None
        if best is None or "objective" not in best.attrs:
            raise ResultFileError(f"{path}: no best fit recorded (no task finished successfully?)")
        params = attr_json(best, "params", {})
        chi2 = float(best.attrs["objective"])
        chi2_reduced = float(best.attrs.get("chi2_reduced", float("nan")))
        table = f["tasks"]
        model = attr_str(table, "model") or attr_str(table, "objective_function")
        names = attr_json(table, "param_names", list(params))
        stored = attr_json(f, ATTR_CONDITIONS, None)
        if stored is None:
            stored = _conditions_from_config(attr_str(f, "config"), attr_str(f, "config_path"))
        created = attr_str(f, "created")
    merged = {**stored, **clean_conditions(conditions)}
    return add_fit(history_path, model, names, merged, [params[n] for n in names], chi2,
                   chi2_reduced=chi2_reduced, source=str(path), source_created=created)


def _conditions_from_config(config_text: str, config_path: str) -> dict[str, Any]:
    """Conditions of a result file written without the `conditions` attr: its config's
    data file (if still there) and [warmstart] conditions."""
    try:
        cfg = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError:
        return {}
    base = Path(config_path).resolve().parent if config_path else Path.cwd()
    model = (cfg.get("model") or {}).get("name")
    data = dict(cfg.get("data") or {})
    out: dict[str, Any] = {}
    if model and "path" in data:
        p = Path(str(data.pop("path"))).expanduser()
        p = p if p.is_absolute() else base / p
        if p.is_file():
            out = data_conditions(model, p, data)
    extra = (cfg.get("warmstart") or {}).get("conditions") or {}
    return {**out, **clean_conditions(extra)}


def conditions_attr(conditions: Mapping[str, Any]) -> str:
    """The value of the root attr ``conditions`` (JSON text)."""
    return json.dumps(clean_conditions(conditions))
