"""The PBT lineage plot: score and hyperparameters against training step, one line per member.

Each completed segment is drawn from the point it restored (the end of the segment whose
checkpoint it started from) through the values it reported to its end, in the colour of
its member. Exploit jumps
(a member continuing from another member's checkpoint) are drawn dotted from the member's
own last point to the donor's, and marked with a triangle. Hyperparameter panels show
the value each member used over each segment's steps.

``plot_lineage(rows, "lineage.png")`` takes lineage rows (a structured array read from
the result file's "trials" table, or :func:`hpcopt.hpo.pbt.lineage_rows`);
:func:`plot_lineage_file` reads them from a result file; :data:`FIGURES` is the figure
list for ``hpcopt report --plots`` (report/plots.py). No pyplot: the figure has its own
Agg canvas, so a notebook's backend is left alone.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ...store import schema
from ..rows import PARAM_COLUMN_PREFIX

MAX_PARAM_PANELS = 4


def is_pbt_table(dtype: np.dtype) -> bool:
    """True for a lineage table (has member, segment and parent_task columns)."""
    return all(n in (dtype.names or ()) for n in ("member", "segment", "parent_task"))


def lineage_figure(rows: np.ndarray, *, params: Sequence[str] | None = None,
                   title: str | None = None, log_score: bool | None = None):
    """A matplotlib Figure (Agg canvas, no pyplot) of the lineage in `rows`.

    `params`: hyperparameter panels (numeric ``p_<name>`` columns; default: all, up to 4);
    `log_score`: log scale for the score (default: when every score is > 0 and they span
    more than two decades).
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    ok = rows[rows["status"] == schema.OK]
    ok = ok[np.argsort(ok["task_id"], kind="stable")]
    names = [n[len(PARAM_COLUMN_PREFIX):] for n in rows.dtype.names
             if n.startswith(PARAM_COLUMN_PREFIX) and rows.dtype[n].kind in "iuf"]
    params = names[:MAX_PARAM_PANELS] if params is None else list(params)
    for p in params:
        if p not in names:
            raise ValueError(f"no numeric hyperparameter column {PARAM_COLUMN_PREFIX + p!r}")
    fig = Figure(figsize=(8, 3.2 + 2.2 * len(params)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1 + len(params), 1, sharex=True, squeeze=False)[:, 0]
    members = sorted(set(ok["member"].tolist()))
    cmap = matplotlib.colormaps["tab10" if len(members) <= 10 else "tab20"]
    colour = {m: cmap(i % cmap.N) for i, m in enumerate(members)}
    _score_panel(axes[0], ok, colour)
    scores = ok["objective"][np.isfinite(ok["objective"])]
    if log_score is None:
        log_score = bool(len(scores)) and scores.min() > 0 and scores.max() / scores.min() > 100
    if log_score:
        axes[0].set_yscale("log")
    for ax, name in zip(axes[1:], params):
        _param_panel(ax, ok, name, colour)
    axes[-1].set_xlabel("step")
    if len(members) <= 12:
        axes[0].legend(handles=[Line2D([], [], color=colour[m], label=f"member {m}")
                                for m in members] +
                       [Line2D([], [], color="0.3", ls=":", marker="^", label="exploit")],
                       fontsize="small", ncol=2, loc="best")
    axes[0].set_title(title or f"PBT lineage: {len(members)} members, {len(ok)} segments",
                      fontsize="medium")
    fig.tight_layout()
    return fig


def plot_lineage(rows: np.ndarray, path: str | Path, **kwargs) -> Path:
    """Draw the lineage of `rows` into `path` (PNG, or any format matplotlib knows);
    keyword arguments as :func:`lineage_figure`. Returns the path written."""
    fig = lineage_figure(rows, **kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _score_panel(ax, ok: np.ndarray, colour: dict) -> None:
    end = {int(r["task_id"]): (int(r["end_step"]), float(r["objective"])) for r in ok}
    last: dict[int, tuple[int, float]] = {}        # member -> its latest point so far
    for r in ok:
        m, tid = int(r["member"]), int(r["task_id"])
        here = end[tid]
        start = end.get(int(r["parent_task"]))
        if int(r["parent_member"]) >= 0 and start is not None:
            if m in last:    # the jump: from the member's own last point to the donor's
                ax.plot(*zip(last[m], start), color=colour[m], ls=":", lw=1.0)
            ax.plot(*start, marker="^", color=colour[m], ms=6, ls="none")
        curve = _reported(r)           # the values reported during the segment, if any
        path = ([start] if start is not None else []) + (curve or [here])
        if len(path) > 1:
            ax.plot(*zip(*path), color=colour[m], lw=1.4)
        ax.plot(*here, marker=".", color=colour[m], ms=3)
        last[m] = here
    ax.set_ylabel("score")
    ax.grid(alpha=0.3)


def _reported(row: np.void) -> list[tuple[int, float]]:
    if "intermediate_json" not in row.dtype.names:
        return []
    text = row["intermediate_json"]
    text = text.decode() if isinstance(text, bytes) else text
    return [(int(a), float(b)) for a, b in json.loads(text)] if text else []


def _param_panel(ax, ok: np.ndarray, name: str, colour: dict) -> None:
    column = PARAM_COLUMN_PREFIX + name
    values = ok[column][np.isfinite(ok[column])]
    for r in ok:
        v = float(r[column])
        if math.isfinite(v):
            ax.plot([int(r["start_step"]), int(r["end_step"])], [v, v],
                    color=colour[int(r["member"])], lw=1.4)
            if int(r["parent_member"]) >= 0:
                ax.plot(int(r["start_step"]), v, marker="^", color=colour[int(r["member"])],
                        ms=5, ls="none")
    if len(values) and values.min() > 0 and values.max() / values.min() > 20:
        ax.set_yscale("log")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)


def read_lineage(path: str | Path) -> np.ndarray:
    """The lineage rows of a PBT result file (ValueError if it is not one)."""
    import h5py
    with h5py.File(path, "r", locking=False) as f:
        ds = f[schema.MAIN_TABLE["hpo"]]
        if not is_pbt_table(ds.dtype):
            raise ValueError(f"{path}: not a PBT result file (no lineage columns)")
        return ds[:]


def plot_lineage_file(result_path: str | Path, out: str | Path, **kwargs) -> Path:
    """Read the lineage of a PBT result file and draw it into `out`."""
    return plot_lineage(read_lineage(result_path), out, **kwargs)


def lineage(ctx) -> None:
    """``hpcopt report --plots`` figure (report/plots.py PlotContext): pbt_lineage.png."""
    ds = ctx.f[schema.MAIN_TABLE["hpo"]]
    if not is_pbt_table(ds.dtype):
        ctx.note("pbt_lineage: not a PBT result file")
        return
    rows = ds[:]
    if not np.any(rows["status"] == schema.OK):
        ctx.note("pbt_lineage: no completed segment yet")
        return
    ctx.save(lineage_figure(rows, title=f"{ctx.path.name}: PBT lineage"), "pbt_lineage")


#: the figures of a PBT result file, for report/plots.py
FIGURES = (lineage,)
