"""Sweep figures: objective vs parameters, the landscape of the two most influential
parameters, convergence, and data vs best model (curves here; XPCS fits in plots_xpcs)."""

from __future__ import annotations

import tomllib

import numpy as np
from matplotlib.ticker import NullFormatter

from ..store import schema
from ..store.reader import attr_str
from . import plots_xpcs
from . import tables as _tables
from .figures import (SAME_RTOL, PlotContext, colorbar, fit_suptitle, fit_title, flat_band,
                      grid_shape, hide_unused, log_if_wide, new_figure, plain_ticks, same_value,
                      spans_decades)

#: scatter plots use at most this many points (random subset, the best ones always kept)
MAX_POINTS = 100_000
KEEP_BEST = 1000
#: sampled (non-grid) designs with fewer starts are drawn as points, not binned
SCATTER_BELOW = 400
_RTOL_TEXT = f"{SAME_RTOL:.0e}".replace("e-0", "e-")        # "1e-9"


class SweepData:
    """Finished rows of the tasks table needed by the figures (subsampled for huge sweeps)."""

    def __init__(self, ctx: PlotContext):
        f = ctx.f
        ds = f["tasks"]
        attrs = _tables.attrs_of(ds)
        self.names: list[str] = list(attrs.get("param_names", []))
        self.lower = np.asarray(attrs.get("lower", [np.nan] * len(self.names)), dtype=float)
        self.upper = np.asarray(attrs.get("upper", [np.nan] * len(self.names)), dtype=float)
        self.local = str(attrs.get("local", ""))
        self.model = str(attrs.get("model", ""))
        self.free = [i for i in range(len(self.names)) if self.lower[i] < self.upper[i]]
        self.log_scale = _log_params(attr_str(f, schema.ATTR_CONFIG), self.names,
                                     self.lower, self.upper)
        # convergence: every finished row, three columns
        timing = _tables.read_table(f, "tasks", fields=["status", "t_start", "wall", "objective"])
        self.timing = timing
        ok = (timing["status"] == schema.OK) & np.isfinite(timing["objective"])
        self.n_ok = int(ok.sum())
        keep_p = min(1.0, MAX_POINTS / max(self.n_ok, 1))
        cutoff = (np.sort(timing["objective"][ok])[min(KEEP_BEST, self.n_ok) - 1]
                  if self.n_ok else 0.0)
        rng = np.random.default_rng(0)
        parts = []
        for rows in _tables.iter_rows(f, "tasks", fields=["task_id", "status", "x0", "x",
                                                          "objective"]):
            rows = rows[(rows["status"] == schema.OK) & np.isfinite(rows["objective"])]
            if keep_p < 1.0:
                rows = rows[(rng.random(len(rows)) < keep_p) | (rows["objective"] <= cutoff)]
            parts.append(rows)
        self.rows = np.concatenate(parts) if parts else np.zeros(0, timing.dtype)
        self.subsampled = keep_p < 1.0
        self.best = self.rows[np.argmin(self.rows["objective"])] if len(self.rows) else None


def _log_params(config_text: str, names, lower, upper) -> list[bool]:
    """Log axis for parameters configured with scale = "log" (or positive and > 3 decades)."""
    try:
        table = tomllib.loads(config_text).get("parameters", {})
    except tomllib.TOMLDecodeError:
        table = {}
    out = []
    for i, n in enumerate(names):
        spec = table.get(n, {})
        configured = isinstance(spec, dict) and spec.get("scale") == "log"
        wide = lower[i] > 0 and upper[i] / lower[i] >= 1e3
        out.append(bool(configured or wide))
    return out


def _objective_label(data: SweepData) -> str:
    return "chi2" if data.model else "objective"


# -- objective vs each parameter --------------------------------------------------------------

def _data(ctx: PlotContext, figure: str) -> SweepData | None:
    """The shared SweepData, or None (with a note) when no task has a finite objective yet."""
    if "sweep" not in ctx.cache:
        ctx.cache["sweep"] = SweepData(ctx)
    data = ctx.cache["sweep"]
    if not len(data.rows) or not data.free:
        if not ctx.cache.get("sweep_noted"):
            ctx.note("sweep figures skipped: no finished task with a finite objective yet")
            ctx.cache["sweep_noted"] = True
        return None
    return data


def objective_vs_parameters(ctx: PlotContext) -> None:
    data = _data(ctx, "objective vs parameters")
    if data is None:
        return
    nrows, ncols = grid_shape(len(data.free))
    fig, axes = new_figure(nrows, ncols, width=4.2, height=3.4)
    y = data.rows["objective"]
    refined = data.local not in ("", "none")
    same = same_value(y)
    label = _objective_label(data)
    for ax, i in zip(np.ravel(axes), data.free):
        if refined:      # hollow grey: the refined points stay visible where they overlap
            ax.scatter(data.rows["x0"][:, i], y, s=14, facecolors="none", edgecolors="0.55",
                       linewidths=0.6, label="start point", rasterized=True, zorder=2)
        ax.scatter(data.rows["x"][:, i], y, s=10, color="C0", zorder=3, rasterized=True,
                   label="refined point" if refined else "evaluated point")
        ax.scatter([data.best["x"][i]], [data.best["objective"]], marker="*", s=260,
                   facecolors="none", edgecolors="C3", linewidths=1.3, zorder=4, label="best")
        _axis_scale(ax.xaxis, data.log_scale[i])
        _objective_axis(ax, y, same)
        ax.set_xlabel(data.names[i])
        ax.set_ylabel(label)
        fit_title(ax, f"{label} vs {data.names[i]}")
    np.ravel(axes)[0].legend(fontsize="small")
    hide_unused(axes, len(data.free))
    sub = f" (random {len(data.rows)} of {data.n_ok})" if data.subsampled else ""
    what = f"{label} reached from each finished start{sub}"
    if same:
        what += f"; {_same_words(data)}"
    fit_suptitle(fig, ctx.path.name, what)
    ctx.save(fig, "sweep_objective_vs_parameters")


def _same_words(data: SweepData) -> str:
    y = data.rows["objective"]
    n = "both" if len(y) == 2 else f"all {len(y)}"
    return (f"{n} starts reached the same minimum, {_objective_label(data)} = "
            f"{float(np.min(y)):.10g} (they differ by less than {_RTOL_TEXT} relative)")


def _axis_scale(axis, log: bool) -> None:
    """A parameter axis: log where the parameter is, otherwise plain tick labels."""
    if log:
        (axis.axes.set_xscale if axis is axis.axes.xaxis else axis.axes.set_yscale)("log")
        axis.set_minor_formatter(NullFormatter())
    else:
        plain_ticks(axis)


def _objective_axis(ax, values: np.ndarray, same: bool) -> None:
    """The objective's y axis: one level when the values differ only by rounding, log when
    they span decades, plain labels otherwise."""
    if same:
        flat_band(ax, float(np.min(values)))
        plain_ticks(ax.yaxis)
        return
    log_if_wide(ax, values)
    if ax.get_yscale() != "log":
        plain_ticks(ax.yaxis)


# -- landscape of the two most influential parameters ----------------------------------------

def _bins(values: np.ndarray, lo: float, hi: float, log: bool, max_bins: int):
    """(bin index per value, bin edges): unique values of a grid, otherwise even bins."""
    uniq = np.unique(values)
    if len(uniq) <= max_bins:
        centers = np.log10(uniq) if log else uniq
        mids = (centers[1:] + centers[:-1]) / 2
        half = (centers[1] - centers[0]) / 2 if len(centers) > 1 else 0.5
        edges = np.concatenate(([centers[0] - half], mids, [centers[-1] + half]))
        if len(centers) > 1:
            edges[-1] = centers[-1] + (centers[-1] - centers[-2]) / 2
        edges = 10 ** edges if log else edges
        return np.searchsorted(uniq, values), edges
    n = max_bins
    edges = np.geomspace(lo, hi, n + 1) if log else np.linspace(lo, hi, n + 1)
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, n - 1), edges


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values`, ties sharing their average rank (scipy's rankdata 'average')."""
    order = np.argsort(values, kind="stable")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def influence(data: SweepData, max_bins: int = 12) -> dict[int, float]:
    """Per free parameter: the spread of the best (lowest) objective rank over its bins.

    Ranks make it scale-free; the minimum over each bin is the profile of the landscape
    along that parameter (flat for a parameter that does not matter).
    """
    y = average_ranks(data.rows["objective"]) / len(data.rows)
    out = {}
    for i in data.free:
        idx, edges = _bins(data.rows["x0"][:, i], data.lower[i], data.upper[i],
                           data.log_scale[i], max_bins)
        best = np.full(len(edges) - 1, np.inf)
        np.minimum.at(best, idx, y)
        best = best[np.isfinite(best)]
        out[i] = float(best.max() - best.min()) if len(best) > 1 else 0.0
    return out


def landscape(ctx: PlotContext) -> None:
    data = _data(ctx, "landscape")
    if data is None:
        return
    if len(data.free) < 2:
        ctx.note("landscape: needs two free parameters; the objective-vs-parameter figure "
                 "is the 1-D landscape")
        return
    scores = influence(data)
    i, j = sorted(sorted(scores, key=lambda k: (-scores[k], k))[:2])   # in parameter order
    fig, axes = new_figure(1, 1, width=6.4, height=5.0)
    ax = axes[0, 0]
    label = _objective_label(data)
    y = data.rows["objective"]
    xi_all, xj_all = data.rows["x0"][:, i], data.rows["x0"][:, j]
    n_bins = int(np.clip(np.sqrt(len(data.rows) / 2), 5, 50))
    is_grid = len(np.unique(xi_all)) <= n_bins and len(np.unique(xj_all)) <= n_bins
    others = " (minimum over the other parameters)" if len(data.free) > 2 else ""
    refined = data.local not in ("", "none")
    if same_value(y):       # one value: colouring it would show rounding noise
        ax.scatter(xi_all, xj_all, s=30, color="C0", edgecolor="0.3", linewidth=0.3,
                   label="start point", rasterized=True)
        what = _same_words(data)
    elif is_grid or len(data.rows) >= SCATTER_BELOW:
        xi, ei = _bins(xi_all, data.lower[i], data.upper[i], data.log_scale[i], n_bins)
        xj, ej = _bins(xj_all, data.lower[j], data.upper[j], data.log_scale[j], n_bins)
        cells = np.full((len(ej) - 1, len(ei) - 1), np.inf)
        np.minimum.at(cells, (xj, xi), y)
        cells[~np.isfinite(cells)] = np.nan
        use_log = spans_decades(cells)
        art = ax.pcolormesh(ei, ej, np.ma.masked_invalid(cells), cmap="viridis_r",
                            shading="flat", norm=_norm(cells, use_log))
        colorbar(fig, art, ax, f"lowest {label} reached from the starts in the cell",
                 log=use_log)
        what = f"{label} landscape of {data.names[i]} and {data.names[j]}{others}"
    else:   # a few sampled starts: each one as a coloured point
        use_log = spans_decades(y)
        art = ax.scatter(xi_all, xj_all, c=y, cmap="viridis_r", s=40, edgecolor="0.3",
                         linewidth=0.3, norm=_norm(y, use_log))
        colorbar(fig, art, ax, f"{label} reached from this start", log=use_log)
        what = f"{label} landscape of {data.names[i]} and {data.names[j]}"
    ax.scatter([data.best["x0"][i]], [data.best["x0"][j]], marker="*", s=200, color="C3",
               edgecolor="white", zorder=4, label="start of the best fit")
    if refined:      # the refined points on top: they gather where the fits end
        ax.scatter([data.best["x"][i]], [data.best["x"][j]], marker="X", s=160, color="C3",
                   edgecolor="black", zorder=5, label="best fit")
        ax.scatter(data.rows["x"][:, i], data.rows["x"][:, j], s=16, color="white",
                   edgecolor="black", linewidth=0.6, zorder=6, label="refined point",
                   rasterized=True)
    _axis_scale(ax.xaxis, data.log_scale[i])
    _axis_scale(ax.yaxis, data.log_scale[j])
    ax.set_xlabel(data.names[i])
    ax.set_ylabel(data.names[j])
    ax.legend(fontsize="small", loc="best")
    fit_suptitle(fig, ctx.path.name, what)
    ctx.save(fig, "sweep_landscape")


def _norm(values: np.ndarray, log: bool):
    """The colour scale: logarithmic in the values themselves (ticks label values, not
    their log10), linear otherwise."""
    from matplotlib.colors import LogNorm, Normalize
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return LogNorm(v.min(), v.max()) if log else Normalize(v.min(), v.max())


# -- convergence ------------------------------------------------------------------------------

def best_so_far(timing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tasks done, seconds since the first start, best ok objective so far), in the order
    the tasks finished (t_start + wall)."""
    end = timing["t_start"] + timing["wall"]
    order = np.argsort(end, kind="stable")
    t = timing[order]
    value = np.where((t["status"] == schema.OK) & np.isfinite(t["objective"]), t["objective"],
                     np.inf)
    best = np.minimum.accumulate(value) if len(value) else value
    elapsed = end[order] - np.nanmin(timing["t_start"]) if len(t) else end[order]
    return np.arange(1, len(t) + 1), elapsed, best


def convergence(ctx: PlotContext) -> None:
    data = _data(ctx, "convergence")
    if data is None:
        return
    done, elapsed, best = best_so_far(data.timing)
    shown = np.isfinite(best)
    fig, axes = new_figure(1, 2, width=4.8, height=3.6)
    label = _objective_label(data)
    same = same_value(best[shown])
    for ax, x, xlabel in ((axes[0, 0], done, "tasks done"),
                          (axes[0, 1], elapsed, "seconds since the first start")):
        ax.step(x[shown], best[shown], where="post", color="C0")
        _objective_axis(ax, best[shown], same)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"best {label} so far")
        ax.grid(alpha=0.3)
    fit_title(axes[0, 0], "convergence by tasks done")
    fit_title(axes[0, 1], "convergence in wall time")
    what = f"{len(done)} finished tasks, in completion order"
    if same:
        what += f"; the first already reached the best {label}, {best[shown][-1]:.10g}"
    fit_suptitle(fig, ctx.path.name, what)
    ctx.save(fig, "sweep_convergence")


# -- data vs best model ------------------------------------------------------------------------

def data_vs_model(ctx: PlotContext) -> None:
    data = _data(ctx, "data vs model")
    if data is None:
        return
    from .fitdata import problem_for_figures
    problem = problem_for_figures(ctx, "data vs model")
    if problem is None:
        return
    if hasattr(problem, "data") and hasattr(problem.data, "c2"):
        plots_xpcs.c2_maps(ctx)
        return
    by_name = dict(zip(data.names, data.best["x"]))
    p = np.array([by_name[n] for n in problem.param_names], dtype=np.float64)
    if hasattr(problem, "x") and hasattr(problem, "y"):
        _draw_curve(ctx, problem, p, data)
    else:
        ctx.note(f"data vs model skipped: no figure for {type(problem).__name__}")


def _draw_curve(ctx: PlotContext, problem, p: np.ndarray, data: SweepData) -> None:
    x = np.asarray(problem.x)
    y = np.asarray(problem.y)
    mu = problem.model(p)
    sigma = getattr(problem, "sigma", None)
    resid = (y - mu) if sigma is None else (y - mu) / sigma
    if x.ndim == 1:
        order, xs, xlabel = np.argsort(x, kind="stable"), x, "x"
    else:
        order, xs, xlabel = np.arange(len(y)), np.arange(len(y)), "data point"
    fig, axes = new_figure(2, 1, width=7.0, height=2.8, sharex=True,
                           gridspec_kw={"height_ratios": [3, 1]})
    top, bottom = axes[0, 0], axes[1, 0]
    if sigma is not None:
        top.errorbar(xs, y, yerr=sigma, fmt=".", color="0.3", ms=4, label="data")
    else:
        top.plot(xs, y, ".", color="0.3", ms=4, label="data")
    top.plot(xs[order], mu[order], "-", color="C3", label="best fit")
    top.set_ylabel("y")
    top.legend(fontsize="small")
    params = ", ".join(f"{n} = {v:.4g}" for n, v in zip(problem.param_names, p))
    fit_title(top, f"{problem.name}: data vs best fit ({params})", size=9.0)
    bottom.axhline(0.0, color="0.5", lw=0.8)
    bottom.plot(xs, resid, ".", color="C0", ms=4)
    bottom.set_xlabel(xlabel)
    bottom.set_ylabel("(y - model)/sigma" if sigma is not None else "y - model")
    ctx.save(fig, "sweep_fit_curve")


FIGURES = (objective_vs_parameters, landscape, convergence, data_vs_model,
           plots_xpcs.g2_cuts, plots_xpcs.parameter_table)
