"""`hpcopt report FILE [--json] [--plots DIR] [--export DIR]` (no MPI needed)."""

from __future__ import annotations

import json
from pathlib import Path

from .summary import contract_json, format_text, summarize_file


def run_report(path: Path, *, as_json: bool = False, plots: Path | None = None,
               export: Path | None = None, top: int = 10) -> int:
    summary = summarize_file(path, top=top)
    if as_json:
        print(json.dumps(contract_json(summary), allow_nan=False))
    else:
        print(format_text(summary))
    if export is not None:
        from .export import export_all
        written = export_all(path, export)
        if not as_json:
            print(f"exported {len(written)} files to {export}")
    if plots is not None:
        from .plots import plot_all
        written = plot_all(path, plots)
        if not as_json:
            print(f"wrote {len(written)} figures to {plots}")
    return 0
