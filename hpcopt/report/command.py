"""`hpcopt report FILE [FILE ...] [--json] [--plots DIR] [--export DIR]` (no MPI needed).

Each file is opened once; the summary, the exports and the figures read the same open
file. Several files are reported one after the other (exports and figures into DIR/STEM
each), and HPO files of one study are also counted together, each trial once
(report/studies.py). The summary goes to stdout (text, or one strict JSON object with --json); the
paths of exported files and figures follow the text summary (with --json they are added
to the object as ``exported`` and ``plots``); notes about figures that could not be drawn
go to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .export import export_loaded
from .loaded import open_loaded
from .plots import plot_loaded
from .studies import combine, finished_trials, format_studies, study_key
from .summary import contract_json, format_text, summarize


def run_report(paths: Path | list[Path], *, as_json: bool = False, plots: Path | None = None,
               export: Path | None = None, top: int = 10) -> int:
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    several = len(paths) > 1
    reports, studies = [], []
    for path in paths:
        sub = (lambda d: None if d is None else d / Path(path).stem) if several else (lambda d: d)
        reports.append(_one(path, top, sub(plots), sub(export)))
        if reports[-1]["study"] is not None:
            studies.append((Path(path), reports[-1]["study"], reports[-1]["trials"]))
    combined = combine(studies) if several else []
    if as_json:
        objects = [r["json"] for r in reports]
        if several:
            print(json.dumps({"files": objects, "studies": combined}, allow_nan=False))
        else:
            print(json.dumps(objects[0], allow_nan=False))
        return 0
    for i, r in enumerate(reports):
        if i:
            print()
        print(r["text"])
        if r["exported"] is not None:
            print(f"exported {len(r['exported'])} files to {r['export_dir']}:")
            _list(r["exported"])
        if r["figures"] is not None:
            print(f"wrote {len(r['figures'])} figures to {r['plots_dir']}:")
            _list(r["figures"])
    if combined:
        print()
        print("\n".join(format_studies(combined)))
    return 0


def _one(path: Path, top: int, plots: Path | None, export: Path | None) -> dict:
    """Summary, exports and figures of one file (opened once)."""
    exported = figures = None
    with open_loaded(path) as r:
        summary = summarize(r, top=top)
        if export is not None:
            exported = export_loaded(r, summary, export)
        if plots is not None:
            figures = plot_loaded(r, plots, on_note=lambda text: print(f"note: {text}",
                                                                       file=sys.stderr))
        text = format_text(summary, r.hooks)
        study = study_key(r)
        trials = finished_trials(r) if study is not None else None
    out = contract_json(summary)
    if exported is not None:
        out["exported"] = [str(p) for p in exported]
    if figures is not None:
        out["plots"] = [str(p) for p in figures]
    return {"json": out, "text": text, "exported": exported, "figures": figures,
            "export_dir": export, "plots_dir": plots, "study": study, "trials": trials}


def _list(paths: list[Path], limit: int = 40) -> None:
    for p in paths[:limit]:
        print(f"  {p}")
    if len(paths) > limit:
        print(f"  ... and {len(paths) - limit} more")
