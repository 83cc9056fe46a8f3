"""What every figure function gets (:class:`PlotContext`) and the helpers they share.

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas, never
through pyplot, so plotting neither needs a display nor changes the backend of a
notebook.  The per-kind figure modules (``plots_sweep``, ``plots_temper``,
``plots_hpo``, hpo.pbt.plot) import this module; report/plots.py runs them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np


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
    loaded: object = None           # the report.hooks.Loaded view of the file, when there is one

    def save(self, fig, name: str) -> Path:
        """Write `fig` as DIR/name.png (Agg canvas) and remember the path."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(fig)
        target = self.out_dir / f"{name}.png"
        fig.savefig(target, dpi=DPI)
        self.written.append(target)
        return target


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
