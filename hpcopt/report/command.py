"""`hpcopt report FILE [--json] [--plots DIR] [--export DIR]` (no MPI needed).

The summary goes to stdout (text, or one strict JSON object with --json); the paths of
exported files and figures follow the text summary (with --json they are added to the
object as ``exported`` and ``plots``); notes about figures that could not be drawn go
to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .summary import contract_json, format_text, summarize_file


def run_report(path: Path, *, as_json: bool = False, plots: Path | None = None,
               export: Path | None = None, top: int = 10) -> int:
    summary = summarize_file(path, top=top)
    exported: list[Path] = []
    figures: list[Path] = []
    if export is not None:
        from .export import export_all
        exported = export_all(path, export)
    if plots is not None:
        from .plots import plot_all
        figures = plot_all(path, plots, on_note=lambda text: print(f"note: {text}",
                                                                   file=sys.stderr))
    if as_json:
        out = contract_json(summary)
        if export is not None:
            out["exported"] = [str(p) for p in exported]
        if plots is not None:
            out["plots"] = [str(p) for p in figures]
        print(json.dumps(out, allow_nan=False))
        return 0
    print(format_text(summary))
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
