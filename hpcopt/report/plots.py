"""`hpcopt report FILE --plots DIR`: PNG figures of a campaign (matplotlib, no screen).

The kind's report hooks name its figures (report/hooks_<kind>.py); a figure that cannot
be drawn (no data file, too few trials, ...) is skipped with a note, never an error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from . import tables as _tables
from .figures import PlotContext
from .hooks import Loaded

log = logging.getLogger("hpcopt.report")


def plot_all(path: str | Path, out_dir: str | Path, *,
             on_note: Callable[[str], None] | None = None) -> list[Path]:
    """Write every figure for the result file `path` into `out_dir`; return the PNG paths.

    `on_note(text)` receives a line for each figure that was skipped (default: logged).
    """
    from .loaded import open_loaded
    with open_loaded(path) as r:
        return plot_loaded(r, out_dir, on_note=on_note)


def plot_loaded(r: Loaded, out_dir: str | Path, *,
                on_note: Callable[[str], None] | None = None) -> list[Path]:
    """The figures of an open result file (see :func:`plot_all`)."""
    out_dir = _tables.make_dir(out_dir)
    note = on_note or (lambda text: log.warning("%s", text))
    ctx = PlotContext(r.f, r.path, out_dir, note, loaded=r)
    for figure in r.hooks.figures(r):
        try:
            figure(ctx)
        except Exception as exc:  # noqa: BLE001 - one broken figure must not stop the rest
            if _tables.raised_by_h5py(exc):
                raise                  # a damaged file: reading() reports it
            note(f"{figure.__name__}: figure not drawn ({type(exc).__name__}: {exc})")
    return ctx.written
