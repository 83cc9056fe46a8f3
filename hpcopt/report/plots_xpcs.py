"""XPCS figures of `hpcopt report --plots` for sweeps of an xpcs:* model.

Each function takes the PlotContext and draws one figure (split into several files when
there are many angles):

* :func:`c2_maps`: the two-time c2 per angle, measured, fitted and residual, time axes in s;
* :func:`g2_cuts`: the one-time correlation g2(tau) = mean of c2(t, t + tau) along each
  diagonal of the two-time map, data with the fit, per angle;
* :func:`parameter_table`: the best parameters with uncertainties and units, the
  contrast and offset of every angle, chi2.

The model and data come from :func:`hpcopt.report.fitdata.problem_for_figures` (rebuilt
once per file), the best point from the file (``best`` group, or the best row so far).
"""

from __future__ import annotations

import math

import numpy as np

from .fitdata import problem_for_figures
from .figures import PlotContext, grid_shape, hide_unused, new_figure

MAX_ANGLES_PER_FIGURE = 4      # c2 map rows per file
MAX_CUTS_PER_FIGURE = 6        # g2 panels per file


class XpcsFit:
    """What the XPCS figures share: problem, best point, model, residuals (once per file)."""

    def __init__(self, problem, best: dict):
        self.problem = problem
        self.data = problem.data
        self.best = best
        self.p = np.array([best["params"][n] for n in problem.param_names], dtype=np.float64)
        self.model = problem.model(self.p)
        self.contrast, self.offset = problem.contrast_offset(self.p)
        d = self.data
        self.resid = d.c2 - self.model if d.sigma is None else (d.c2 - self.model) / d.sigma
        self.times = d.times

    @property
    def weighted(self) -> bool:
        return self.data.sigma is not None


def xpcs_fit(ctx: PlotContext, figure: str) -> XpcsFit | None:
    """The shared XpcsFit, or None when the file is no XPCS fit (a note if it should be one)."""
    if "xpcs_fit" in ctx.cache:
        return ctx.cache["xpcs_fit"]
    fit = None
    problem = problem_for_figures(ctx, figure)
    if problem is not None and hasattr(getattr(problem, "data", None), "c2"):
        best = ctx.loaded.hooks.best(ctx.loaded)
        if best is None:
            ctx.note(f"{figure} skipped: no finished start yet")
        else:
            fit = XpcsFit(problem, best)
    ctx.cache["xpcs_fit"] = fit
    return fit


def _chunks(n: int, size: int) -> list[list[int]]:
    return [list(range(k, min(n, k + size))) for k in range(0, n, size)]


def _save_parts(ctx: PlotContext, fig, stem: str, part: int, parts: int) -> None:
    ctx.save(fig, stem + (f"_{part + 1}" if parts > 1 else ""))


def _angle_label(fit: XpcsFit, a: int) -> str:
    return f"phi = {fit.data.phi[a]:g} deg"


# -- two-time maps ------------------------------------------------------------------------------

def c2_maps(ctx: PlotContext) -> None:
    """Measured, fitted and residual two-time c2 per angle (rows), axes t1, t2 in seconds."""
    fit = xpcs_fit(ctx, "c2 maps")
    if fit is None:
        return
    d, t = fit.data, fit.times
    half = d.dt / 2   # pixels centred on the frame times
    extent = (t[0] - half, t[-1] + half, t[0] - half, t[-1] + half)
    off_diagonal = ~np.eye(d.n, dtype=bool)
    chunks = _chunks(d.n_phi, MAX_ANGLES_PER_FIGURE)
    for part, angles in enumerate(chunks):
        fig, axes = new_figure(len(angles), 3, width=3.6, height=3.1)
        for row, a in zip(axes, angles):
            lo, hi = np.percentile(d.c2[a][off_diagonal], [1, 99])
            for ax, img, title in ((row[0], d.c2[a], "measured c2"), (row[1], fit.model[a], "fitted c2")):
                im = ax.imshow(img, origin="lower", extent=extent, vmin=lo, vmax=hi,
                               cmap="viridis", aspect="equal", interpolation="nearest")
                ax.set_title(f"{title}, {_angle_label(fit, a)}", fontsize="small")
            fig.colorbar(im, ax=row[:2], shrink=0.85, label="c2")
            r = fit.resid[a]
            lim = float(np.nanpercentile(np.abs(r[off_diagonal]), 99.5)) or 1.0
            im = row[2].imshow(r, origin="lower", extent=extent, cmap="RdBu_r", vmin=-lim,
                               vmax=lim, aspect="equal", interpolation="nearest")
            fig.colorbar(im, ax=row[2], shrink=0.85,
                         label="(data - fit) / sigma" if fit.weighted else "data - fit")
            row[2].set_title("residual", fontsize="small")
            for ax in row:
                ax.set_xlabel("t2 (s)")
                ax.set_ylabel("t1 (s)")
        suffix = f" ({part + 1}/{len(chunks)})" if len(chunks) > 1 else ""
        fig.suptitle(f"{fit.problem.name}: two-time correlation, best fit chi2 = "
                     f"{fit.best['objective']:.6g}{suffix}", fontsize="medium")
        _save_parts(ctx, fig, "sweep_fit_c2", part, len(chunks))


# -- one-time cuts ------------------------------------------------------------------------------

def diagonal_means(c2: np.ndarray, pairs: str) -> np.ndarray:
    """g2(tau_k) = mean over t of c2(t, t + k dt) for k = 1 .. n-1 (both triangles when each
    holds its own measurement, pairs "both"; the upper one when c2 is symmetric)."""
    n = c2.shape[0]
    out = np.empty(n - 1)
    for k in range(1, n):
        upper = np.diagonal(c2, k)
        out[k - 1] = upper.mean() if pairs == "once" else (upper.mean() + np.diagonal(c2, -k).mean()) / 2
    return out


def diagonal_errors(c2: np.ndarray, sigma: np.ndarray | None, pairs: str) -> np.ndarray:
    """Standard error of each diagonal mean: from sigma when known, else from the scatter."""
    n = c2.shape[0]
    out = np.empty(n - 1)
    for k in range(1, n):
        vals = np.diagonal(c2, k) if pairs == "once" else np.concatenate(
            [np.diagonal(c2, k), np.diagonal(c2, -k)])
        if sigma is not None:
            sig = np.diagonal(sigma, k) if pairs == "once" else np.concatenate(
                [np.diagonal(sigma, k), np.diagonal(sigma, -k)])
            out[k - 1] = math.sqrt(float(np.sum(sig ** 2))) / len(sig)
        else:
            out[k - 1] = np.std(vals, ddof=1) / math.sqrt(len(vals)) if len(vals) > 1 else np.nan
    return out


def g2_cuts(ctx: PlotContext) -> None:
    """The one-time correlation (diagonal means of c2) per angle, data with the fit."""
    fit = xpcs_fit(ctx, "g2 cuts")
    if fit is None:
        return
    d = fit.data
    tau = d.dt * np.arange(1, d.n)
    chunks = _chunks(d.n_phi, MAX_CUTS_PER_FIGURE)
    for part, angles in enumerate(chunks):
        nrows, ncols = grid_shape(len(angles))
        fig, axes = new_figure(nrows, ncols, width=4.2, height=3.3)
        for ax, a in zip(np.ravel(axes), angles):
            sigma = None if d.sigma is None else d.sigma[a]
            g2 = diagonal_means(d.c2[a], d.pairs)
            err = diagonal_errors(d.c2[a], sigma, d.pairs)
            ax.errorbar(tau, g2, yerr=err, fmt=".", ms=3, color="0.3", elinewidth=0.6,
                        label="data")
            ax.plot(tau, diagonal_means(fit.model[a], d.pairs), "-", color="C3",
                    label=f"fit (contrast {fit.contrast[a]:.3g}, offset {fit.offset[a]:.4g})")
            ax.set_xscale("log")
            ax.set_xlabel("lag tau (s)")
            ax.set_ylabel("g2(tau)")
            ax.set_title(_angle_label(fit, a), fontsize="small")
            ax.legend(fontsize="x-small")
            ax.grid(alpha=0.3)
        hide_unused(axes, len(angles))
        suffix = f" ({part + 1}/{len(chunks)})" if len(chunks) > 1 else ""
        fig.suptitle(f"{fit.problem.name}: one-time correlation (two-time c2 averaged along "
                     f"each diagonal){suffix}", fontsize="medium")
        _save_parts(ctx, fig, "sweep_fit_g2", part, len(chunks))


# -- parameters ---------------------------------------------------------------------------------

def _value(v: float) -> str:
    return f"{v:.6g}"


def parameter_rows(fit: XpcsFit) -> list[list[str]]:
    """[name, value, uncertainty, unit] for every parameter, then contrast and offset per angle."""
    from ..models.xpcs import PARAM_UNITS
    errs = fit.best.get("stderr") or {}
    rows = []
    for name, value in zip(fit.problem.param_names, fit.p):
        if name not in errs:
            err = "(fixed)" if errs else "n/a"
        else:
            err = f"{errs[name]:.3g}" if math.isfinite(errs[name]) else "not determined"
        rows.append([name, _value(value), err, PARAM_UNITS.get(name, "")])
    shared = fit.problem.scaling == "constant"
    for a in range(1 if shared else fit.data.n_phi):
        where = "all angles" if shared else _angle_label(fit, a)
        rows.append([f"contrast ({where})", _value(fit.contrast[a]), "closed form", ""])
        rows.append([f"offset ({where})", _value(fit.offset[a]), "closed form", ""])
    return rows


def parameter_table(ctx: PlotContext) -> None:
    """The best fit as a table: parameters +/- standard errors with units, contrast, offset, chi2."""
    fit = xpcs_fit(ctx, "parameter table")
    if fit is None:
        return
    rows = parameter_rows(fit)
    fig, axes = new_figure(1, 1, width=7.2, height=1.0 + 0.27 * (len(rows) + 1))
    ax = axes[0, 0]
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=["parameter", "best", "std. error", "unit"],
                     loc="upper center", cellLoc="left", colLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1.0, 1.25)
    red = fit.best.get("chi2_reduced")
    d = fit.data
    lines = [f"chi2 = {fit.best['objective']:.8g}"
             + (f", reduced chi2 = {red:.6g}" if isinstance(red, float) and math.isfinite(red) else "")
             + f" over {fit.problem.n_points} points ({'sigma from the file' if fit.weighted else 'sigma = 1'})",
             f"q = {d.q:g} 1/Å, {d.n} times from {fit.times[0]:g} s every {d.dt:g} s, "
             f"{d.n_phi} angle(s); {d.layout} layout, pairs {d.pairs}, diagonal {d.diagonal}"]
    if fit.best.get("jacobian_singular"):
        lines.append("the Jacobian is singular at the best point: uncertainties are not reliable")
    ax.set_title(f"{fit.problem.name}: best fit" + (f", mode {fit.problem.mode}"
                                                     if fit.problem.mode else ""), fontsize="medium")
    fig.text(0.02, 0.01, "\n".join(lines), fontsize="small", va="bottom")
    ctx.save(fig, "sweep_fit_parameters")


FIGURES = (c2_maps, g2_cuts, parameter_table)
