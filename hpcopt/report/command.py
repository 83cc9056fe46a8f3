"""`hpcopt report FILE [--json] [--plots DIR] [--export DIR]` (no MPI needed).

The file is opened once; the summary, the exports and the figures read the same open
file. The summary goes to stdout (text, or one strict JSON object with --json); the
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
from .summary import contract_json, format_text, summarize


def run_report(path: Path, *, as_json: bool = False, plots: Path | None = None,
               export: Path | None = None, top: int = 10) -> int:
    exported: list[Path] = []
    figures: list[Path] = []
    with open_loaded(path) as r:
        summary = summarize(r, top=top)
        if export is not None:
            exported = export_loaded(r, summary, export)
        if plots is not None:
            figures = plot_loaded(r, plots, on_note=lambda text: print(f"note: {text}",
                                                                       file=sys.stderr))
        text = format_text(summary, r.hooks)
    if as_json:
        out = contract_json(summary)
        if export is not None:
            out["exported"] = [str(p) for p in exported]
        if plots is not None:
            out["plots"] = [str(p) for p in figures]
        print(json.dumps(out, allow_nan=False))
        return 0
    print(text)
    if export is not None:
        print(f"exported {len(exported)} files to {export}:")
        _list(exported)
    if plots is not None:
        print(f"wrote {len(figures)} figures to {plots}:")
        _list(figures)
    return 0


def _list(paths: list[Path], limit: int = 40) -> None:
    for p in paths[:limit]:
        print(f"  {p}")
    if len(paths) > limit:
        print(f"  ... and {len(paths) - limit} more")
