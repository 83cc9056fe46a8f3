"""`hpcopt report FILE --plots DIR`: PNG figures of a campaign (matplotlib, no screen).

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas, never
through pyplot, so plotting neither needs a display nor changes the backend of a
notebook that calls :func:`plot_all`.  The per-kind figures live in
``plots_sweep``, ``plots_temper`` and ``plots_hpo``; a figure that cannot be drawn
(no data file, too few trials, ...) is skipped with a note, never an error.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from ..store.reader import attr_str
from . import tables as _tables

log = logging.getLogger("hpcopt.report")
DPI = 110


@dataclass
class PlotContext:
    """What every figure function gets: the open file, where to write, how to note a skip."""

    f: h5py.File
    path: Path                      # the result file
    out_dir: Path
    note: Callable[[str], None]
    written: list[Path] = field(default_factory=list)
    cache: dict = field(default_factory=dict)     # data shared by the figures of one file

    def save(self, fig, name: str) -> Path:
        """Write `fig` as DIR/name.png (Agg canvas) and remember the path."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(fig)
        target = self.out_dir / f"{name}.png"
        fig.savefig(target, dpi=DPI)
        self.written.append(target)
        return target


def plot_all(path: str | Path, out_dir: str | Path, *,
             on_note: Callable[[str], None] | None = None) -> list[Path]:
    """Write every figure for the result file `path` into `out_dir`; return the PNG paths.

    `on_note(text)` receives a line for each figure that was skipped (default: logged).
    """
    out_dir = _tables.make_dir(out_dir)
    note = on_note or (lambda text: log.warning("%s", text))
    with _tables.reading(path) as f:
        ctx = PlotContext(f, Path(path), out_dir, note)
        kind = attr_str(f, "kind")
        if kind == "sweep":
            from . import plots_sweep as module
        elif kind == "temper":
            from . import plots_temper as module
        else:
            from . import plots_hpo as module
        figures = list(module.FIGURES)
        if kind == "hpo":
            from ..hpo.pbt import plot as pbt_plot
            if pbt_plot.is_pbt_table(f["trials"].dtype):
                figures += pbt_plot.FIGURES        # the lineage of a PBT population
        for figure in figures:
            try:
                figure(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken figure must not stop the rest
                if _tables.raised_by_h5py(exc):
                    raise                  # a damaged file: reading() reports it
                note(f"{figure.__name__}: figure not drawn ({type(exc).__name__}: {exc})")
    return ctx.written


# -- helpers shared by the figure modules --------------------------------------------------

def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 4.0,
               squeeze: bool = False, **kwargs):
    """A Figure (not pyplot) with a grid of axes; size per panel in inches."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **kwargs)
    return fig, axes


def spans_decades(values, decades: float = 2.0) -> bool:
    """True when every finite value is positive and they span at least `decades` decades."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2 or v.min() <= 0:
        return False
    return math.log10(v.max() / v.min()) >= decades


def log_if_wide(ax, values, axis: str = "y") -> None:
    if spans_decades(values):
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def hide_unused(axes, used: int) -> None:
    for ax in list(np.ravel(axes))[used:]:
        ax.set_visible(False)


def grid_shape(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(max_cols, max(n, 1))
    return math.ceil(max(n, 1) / cols), cols
