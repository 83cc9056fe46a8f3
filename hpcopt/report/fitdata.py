"""Rebuild a sweep's fit problem (model + data) from what the result file recorded.

The file keeps the config's TOML text (root attr ``config``) and the path the config had
(``config_path``, possibly relative to where the job ran).  A relative data path is
taken from the config's directory, as the sweep did; when the report runs elsewhere
(a laptop, another working directory) the data file is also looked for next to the
result file.  Nothing here raises for a missing file: the caller gets a reason instead.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import h5py

from ..bundled import expand
from ..store import schema
from ..store.reader import attr_str


@dataclass
class Rebuilt:
    problem: object | None          # a FitProblem, or None
    reason: str = ""                # why not (empty: the sweep has no model, nothing to draw)


def candidate_dirs(result_path: Path, config_path: str) -> list[Path]:
    """Directories a relative data path may be relative to, most likely first."""
    dirs: list[Path] = []
    result_dir = result_path.resolve().parent
    if config_path:
        cp = Path(config_path).expanduser()
        if cp.is_absolute():
            dirs.append(cp.parent)
        else:
            dirs += [(Path.cwd() / cp).parent, (result_dir / cp).parent]
    dirs.append(result_dir)
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def rebuild_problem(f: h5py.File, result_path: Path) -> Rebuilt:
    """The FitProblem of a model sweep, or a reason why it cannot be rebuilt here."""
    try:
        cfg = tomllib.loads(attr_str(f, schema.ATTR_CONFIG))
    except tomllib.TOMLDecodeError as exc:
        return Rebuilt(None, f"the stored config is not valid TOML ({exc})")
    model_table = dict(cfg.get("model", {}))
    model = model_table.pop("name", None)          # the rest: model options (XPCS mode, scaling)
    data = dict(cfg.get("data", {}))
    if not model or "path" not in data:
        return Rebuilt(None)
    try:
        data_path = Path(expand(str(data.pop("path")))).expanduser()
    except ValueError as exc:
        return Rebuilt(None, f"data.path: {exc}")
    config_path = attr_str(f, "config_path")
    dirs = candidate_dirs(result_path, config_path)
    if data_path.is_absolute():
        found, tried = (data_path if data_path.exists() else None), [data_path]
    else:
        tried = [d / data_path for d in dirs]
        found = next((t for t in tried if t.exists()), None)
    alone = result_path.resolve().parent / data_path.name
    if found is None and alone.exists():   # the data file copied next to the result file
        found = alone
    if alone not in tried:
        tried.append(alone)
    if found is None:
        return Rebuilt(None, f"data file {data_path} not found (looked for "
                             f"{', '.join(str(t) for t in tried)})")
    from ..models.registry import build_problem
    names = _param_names(f)
    try:
        # user models are imported from the config's directory, as the sweep did
        base = next((d for d in dirs if (d / data_path).exists()), found.parent)
        problem = build_problem(model, found, data_options=data or None,
                                source=config_path or None, base_dir=base, param_names=names,
                                model_options=model_table or None)
    except Exception as exc:  # noqa: BLE001 - user model imports, bad data: report, don't fail
        return Rebuilt(None, f"cannot rebuild model {model} on {data_path}: {exc}")
    return Rebuilt(problem)


def _param_names(f: h5py.File) -> list[str]:
    import json
    raw = f["tasks"].attrs.get("param_names", "[]")
    return json.loads(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)


def problem_for_figures(ctx, figure: str):
    """The sweep's FitProblem for the figures of one report, rebuilt once per file.

    None (after one note, "<figure> skipped: <reason>", for the first figure that asks)
    when it cannot be rebuilt; None without a note for sweeps that have no model.
    """
    if "fit_problem" not in ctx.cache:
        ctx.cache["fit_problem"] = rebuild_problem(ctx.f, ctx.path)
        rebuilt = ctx.cache["fit_problem"]
        if rebuilt.problem is None and rebuilt.reason:
            ctx.note(f"{figure} skipped: {rebuilt.reason}")
    return ctx.cache["fit_problem"].problem
