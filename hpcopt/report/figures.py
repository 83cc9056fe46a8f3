"""What every figure function gets (:class:`PlotContext`) and the helpers they share.

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas, never
through pyplot, so plotting neither needs a display nor changes the backend of a
notebook.  The per-kind figure modules (``plots_sweep``, ``plots_temper``,
``plots_hpo``, hpo.pbt.plot) import this module; report/plots.py runs them.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import h5py
import numpy as np
from matplotlib.ticker import Formatter


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


# -- titles that fit ----------------------------------------------------------------------------

_CHAR_WIDTH = 0.62      # of DejaVu Sans, in units of the font size (a generous average)


def fit_suptitle(fig, name: str, what: str) -> None:
    """The title "FILE: what", wrapped to the figure's width and never cut off: when it
    does not fit on one line, the file name comes first (smaller, broken at hyphens or
    dots if it must be), then `what`."""
    width_pt = fig.get_figwidth() * 72
    text = f"{name}: {what}"
    size = 12.0
    if len(text) * _CHAR_WIDTH * size > width_pt:
        size = max(8.0, min(size, width_pt / (_CHAR_WIDTH * (len(name) + 1))))
        chars = max(10, int(width_pt / (_CHAR_WIDTH * size)))
        text = "\n".join(textwrap.wrap(f"{name}:", chars, break_on_hyphens=True)
                         + textwrap.wrap(what, chars))
    fig.suptitle(text, fontsize=size)


def fit_title(ax, text: str, size: float = 10.0) -> None:
    """An axes title wrapped to the width of its axes (so neighbours do not cut it)."""
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72 * 0.9
    chars = max(10, int(width_pt / (_CHAR_WIDTH * size)))
    ax.set_title("\n".join(textwrap.wrap(text, chars)) if len(text) > chars else text,
                 fontsize=size)


# -- numbers that do not mislead -----------------------------------------------------------------

#: values closer than this (relative) differ only by rounding: one value, not a colour scale
SAME_RTOL = 1e-9


def same_value(values, rtol: float = SAME_RTOL) -> bool:
    """True when the finite `values` (at least one) agree to `rtol` relative to the largest."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return False
    lo, hi = float(v.min()), float(v.max())
    return hi - lo <= rtol * max(abs(lo), abs(hi))


class PlainFormatter(Formatter):
    """Tick labels as plain numbers with the fewest digits that tell the ticks apart and
    say where they are: no offset ("+1.2e3") or multiplier ("1e-5") text at the end of the
    axis, which a reader misses or a layout cuts off.  Decimal notation between 1e-4 and
    1e6, otherwise each label in its own scientific notation ("2.5e-7")."""

    def __call__(self, x, pos=None) -> str:
        return f"{x:.6g}"

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        values = [float(v) for v in values]
        if not values:
            return []
        scale = max(abs(v) for v in values)
        gaps = np.diff(np.unique(values))
        step = float(gaps.min()) if gaps.size else (scale or 1.0)
        decimal = 1e-4 <= scale < 1e6
        labels: list[str] = []
        for digits in range(0, 16):
            labels = [_number(v, digits, decimal, scale) for v in values]
            if (len(set(labels)) == len(labels)
                    and all(abs(float(t) - v) <= 0.01 * step for t, v in zip(labels, values))):
                break
        return labels


def _number(v: float, digits: int, decimal: bool, scale: float) -> str:
    if abs(v) < 1e-12 * scale or v == 0:          # 0 computed as 1e-17 by the locator
        return "0"
    if decimal:
        return f"{v:.{digits}f}"
    mantissa, exponent = f"{v:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def plain_ticks(axis) -> None:
    """Plain, distinct tick labels on a linear `axis` (ax.xaxis, ax.yaxis, a colorbar's)."""
    axis.set_major_formatter(PlainFormatter())


def colorbar(fig, art, ax, label: str, *, log: bool = False):
    """A colorbar whose ticks are labelled with plain numbers (powers of ten when `log`)."""
    cb = fig.colorbar(art, ax=ax, label=label)
    if not log:
        plain_ticks(cb.ax.yaxis)
    return cb


def flat_band(ax, value: float, axis: str = "y") -> None:
    """Limits of +-5 % around `value` (+-1 around 0): one value drawn as a level line, not
    rounding noise blown up to fill the axis."""
    half = 0.05 * abs(value) or 1.0
    (ax.set_ylim if axis == "y" else ax.set_xlim)(value - half, value + half)
