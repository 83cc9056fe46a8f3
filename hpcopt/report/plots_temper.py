"""Parallel tempering figures: energy and temperature traces per replica, neighbour
acceptance, round trips, and the T_min samples (corner plot; Ising: energy and
magnetisation histograms)."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator

from ..store.reader import attr_json
from . import tables as _tables
from .figures import PlotContext, fit_suptitle, new_figure, spans_decades
from .temper_data import temper_details

MAX_TRACE_REPLICAS = 12
MAX_TRACE_POINTS = 5000      # rounds drawn per trace (evenly thinned beyond)
MAX_CORNER = 6               # parameters in the corner plot
WALK_REPLICAS = 2
MAX_BARS = 80                # histogram bars of a discrete observable (levels merged beyond)


def _rounds(ctx: PlotContext) -> np.ndarray:
    if "rounds" not in ctx.cache:
        fields = [c for c in ("task_id", "slot", "temperature", "energy", "best_energy")
                  if c in _tables.columns(ctx.f, "rounds")]
        ctx.cache["rounds"] = _tables.read_table(ctx.f, "rounds", fields=fields)
    return ctx.cache["rounds"]


def _details(ctx: PlotContext) -> dict:
    if "details" not in ctx.cache:
        ctx.cache["details"] = temper_details(ctx.f)
    return ctx.cache["details"]


def _thin(n: int) -> slice:
    return slice(None, None, max(1, -(-n // MAX_TRACE_POINTS)))


def _shown_replicas(n: int) -> np.ndarray:
    if n <= MAX_TRACE_REPLICAS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_TRACE_REPLICAS).round().astype(int))


def traces(ctx: PlotContext) -> None:
    rounds = _rounds(ctx)
    if not len(rounds):
        ctx.note("temper traces skipped: no round finished yet")
        return
    n = rounds["energy"].shape[1]
    shown = _shown_replicas(n)
    step = _thin(len(rounds))
    r = rounds[step]
    fig, axes = new_figure(2, 1, width=8.0, height=3.2, sharex=True)
    e_ax, t_ax = axes[0, 0], axes[1, 0]
    colors = _colors(len(shown))
    for c, k in zip(colors, shown):
        e_ax.plot(r["task_id"], r["energy"][:, k], lw=0.8, color=c, label=f"replica {k}")
        t_ax.plot(r["task_id"], r["temperature"][:, k], lw=0.8, color=c, drawstyle="steps-post")
    e_ax.plot(r["task_id"], r["best_energy"], "k--", lw=1.0, label="lowest energy so far")
    e_ax.set_ylabel("energy")
    e_ax.set_title("energy of each replica after each round")
    if len(shown) <= 8:
        e_ax.legend(fontsize="x-small", ncol=3)
    if spans_decades(rounds["temperature"], 1.0):
        t_ax.set_yscale("log")
    t_ax.set_ylabel("temperature")
    t_ax.set_xlabel("exchange round")
    t_ax.set_title("temperature of each replica (moves by accepted swaps)")
    some = f" ({len(shown)} of {n} replicas)" if len(shown) < n else ""
    fit_suptitle(fig, ctx.path.name, f"replica traces{some}")
    ctx.save(fig, "temper_traces")


def _colors(n: int):
    from matplotlib import colormaps
    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.0, 0.9, max(n, 1))]


def acceptance(ctx: PlotContext) -> None:
    d = _details(ctx)
    pairs = d["pairs"]
    if not pairs:
        ctx.note("acceptance skipped: needs at least two replicas and one finished round")
        return
    fig, axes = new_figure(1, 1, width=max(5.0, 0.7 * len(pairs) + 2), height=3.8)
    ax = axes[0, 0]
    acc = np.array([p["acceptance"] for p in pairs], dtype=float)
    labels = [f"{p['t_low']:.3g}-{p['t_high']:.3g}" for p in pairs]
    ax.bar(np.arange(len(pairs)), np.nan_to_num(acc), color="C0")
    ax.set_xticks(np.arange(len(pairs)), labels, rotation=45 if len(pairs) > 6 else 0,
                  fontsize="small")
    ax.set_ylim(0, 1)
    ax.axhline(0.2, color="0.5", ls=":", lw=1, label="0.2")
    ax.set_xlabel("neighbouring temperatures")
    ax.set_ylabel("swap acceptance rate")
    src = " (rounds so far)" if d["from_rounds"] else ""
    ax.set_title(f"neighbour swap acceptance{src}")
    ctx.save(fig, "temper_acceptance")


def round_trips(ctx: PlotContext) -> None:
    d = _details(ctx)
    rounds = _rounds(ctx)
    if not len(rounds) or rounds["slot"].shape[1] < 2:
        ctx.note("round trips skipped: needs at least two replicas and one finished round")
        return
    trips = np.asarray(d["round_trips"], dtype=float)
    fig, axes = new_figure(1, 2, width=5.0, height=3.8)
    ax = axes[0, 0]
    ax.bar(np.arange(len(trips)), trips, color="C2")
    ax.set_xlabel("replica")
    ax.set_ylabel("round trips T_min -> T_max -> T_min")
    ax.set_title(f"round trips per replica (total {int(trips.sum())})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    walk = axes[0, 1]
    n = rounds["slot"].shape[1]
    step = _thin(len(rounds))
    shown = _shown_replicas(n)[:: max(1, len(_shown_replicas(n)) // WALK_REPLICAS)][:WALK_REPLICAS]
    for k in shown:
        walk.plot(rounds["task_id"][step], rounds["slot"][step, k], lw=0.8,
                  drawstyle="steps-post", label=f"replica {k}")
    walk.set_xlabel("exchange round")
    walk.set_ylabel("temperature index (0 = T_min)")
    walk.set_title("walk through the ladder")
    walk.yaxis.set_major_locator(MaxNLocator(integer=True))
    walk.legend(fontsize="x-small")
    src = " (rounds so far)" if d["from_rounds"] else ""
    fit_suptitle(fig, ctx.path.name, f"round trips{src}")
    ctx.save(fig, "temper_round_trips")


def samples(ctx: PlotContext) -> None:
    if "samples" not in ctx.f:
        return
    rows = _tables.read_table(ctx.f, "samples")
    if not len(rows):
        ctx.note("posterior skipped: no T_min sample stored yet (burn-in not over?)")
        return
    names = attr_json(ctx.f["samples"], "param_names", []) or []
    t_min = float(rows["temperature"][0])
    if names:
        _corner(ctx, rows, names, t_min)
    else:
        _state_histograms(ctx, rows, t_min)


def _corner(ctx: PlotContext, rows: np.ndarray, names: list[str], t_min: float) -> None:
    x = rows["state"].reshape(len(rows), -1)
    shown = names[:MAX_CORNER]
    k = len(shown)
    best = ctx.f["best"].attrs.get("params") if "best" in ctx.f else None
    best_params = _tables.decode_attr("params", best) if best is not None else {}
    fig, axes = new_figure(k, k, width=max(2.6, 4.0 / k), height=2.4)
    for a in range(k):
        for b in range(k):
            ax = axes[a, b]
            if b > a:
                ax.set_visible(False)
                continue
            if a == b:
                ax.hist(x[:, a], bins=30, density=True, color="C0", alpha=0.8)
                if isinstance(best_params, dict) and shown[a] in best_params:
                    ax.axvline(best_params[shown[a]], color="C3", lw=1)
                ax.set_ylabel("density" if a == 0 else "")
            else:
                ax.hist2d(x[:, b], x[:, a], bins=30, cmap="Blues")
                ax.set_ylabel(shown[a] if b == 0 else "")
            ax.set_xlabel(shown[b] if a == k - 1 else "")
    more = f"; first {k} of {len(names)} parameters" if len(names) > k else ""
    fit_suptitle(fig, ctx.path.name, f"{len(rows)} samples at T = {t_min:g}{more} "
                                  "(red: lowest energy seen)")
    ctx.save(fig, "temper_posterior")


def _state_histograms(ctx: PlotContext, rows: np.ndarray, t_min: float) -> None:
    """Discrete states (Ising spins): energy and magnetisation distributions at T_min, one bar
    per level the lattice allows (levels merged evenly when there are more than MAX_BARS)."""
    from ..kernels.ising import levels
    if "magnetisation" in rows.dtype.names:
        m = rows["magnetisation"]
    else:
        m = rows["state"].reshape(len(rows), -1).sum(axis=1).astype(float)
    grid = levels(int(rows["state"].shape[1]))
    fig, axes = new_figure(1, 2, width=4.6, height=3.6)
    for ax, values, name, label in ((axes[0, 0], rows["energy"], "energy", "energy E"),
                                    (axes[0, 1], m, "magnetisation", "magnetisation M")):
        lo, hi, step = grid[name]
        merge = max(1, -(-((hi - lo) // step + 1) // MAX_BARS))
        width = step * merge
        edges = np.arange(lo - step / 2, hi + width, width)
        counts, _ = np.histogram(values, bins=edges)
        centers = (edges[:-1] + edges[1:]) / 2
        shown = counts > 0
        ax.bar(centers[shown], counts[shown] / counts.sum(), width=0.8 * width, color="C0")
        if name == "magnetisation":      # symmetric: the whole range, ticks at 0, +-N/2, +-N
            ax.set_xlim(lo - width, hi + width)
            ax.set_xticks(sorted({lo, lo // 2 // step * step, 0, hi // 2 // step * step, hi}))
        else:
            ax.set_xlim(max(lo, values.min()) - 2 * width, min(hi, values.max()) + 2 * width)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=7, integer=True, steps=[1, 2, 4, 5, 10]))
        ax.set_xlabel(label + (f" ({merge} levels per bar)" if merge > 1 else ""))
        ax.set_ylabel("fraction of samples")
        ax.set_title(f"{label.split()[0]} at T = {t_min:g}")
    fit_suptitle(fig, ctx.path.name, f"{len(rows)} samples at T_min")
    ctx.save(fig, "temper_histograms")


FIGURES = (traces, acceptance, round_trips, samples)
