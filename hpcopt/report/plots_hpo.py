"""HPO figures: optimization history, parameter importances (Optuna's fANOVA on an
in-memory study rebuilt from the file), parallel coordinates, slices, and the
intermediate values of every trial with pruned trials marked."""

from __future__ import annotations

import json
import tomllib

import numpy as np
from matplotlib.ticker import MaxNLocator

from ..store import schema
from ..store.reader import attr_str
from . import tables as _tables
from .figures import PlotContext, grid_shape, hide_unused, log_if_wide, new_figure, spans_decades

MIN_TRIALS_FOR_IMPORTANCE = 5
MAX_LINES = 2000          # trials drawn in the parallel-coordinate and intermediate figures


class Trials:
    """Finished trials: numbers, states, values, real params, intermediate values."""

    def __init__(self, ctx: PlotContext):
        ds = ctx.f["trials"]
        self.direction = attr_str(ds, "direction", "minimize")
        fields = ["task_id", "status", "objective", "params_json", "intermediate_json"]
        rows = _tables.read_table(ctx.f, "trials", fields=fields)
        rows = rows[np.argsort(rows["task_id"], kind="stable")]
        self.number = rows["task_id"]
        self.status = rows["status"]
        self.value = rows["objective"]
        self.params = [json.loads(t) if t else {} for t in rows["params_json"]]
        self.intermediate = [json.loads(t) if t else [] for t in rows["intermediate_json"]]
        self.complete = (self.status == schema.OK) & np.isfinite(self.value)
        self.pruned = self.status == schema.PRUNED
        self.failed = (self.status == schema.FAILED) | (self.status == schema.TIMEOUT)
        names: list[str] = []
        for p in self.params:
            names += [k for k in p if k not in names]
        self.names = names
        self.space = _space(attr_str(ctx.f, schema.ATTR_CONFIG))

    @property
    def sign(self) -> float:
        return -1.0 if self.direction == "maximize" else 1.0

    def column(self, name: str) -> tuple[np.ndarray, list | None]:
        """(numeric values with NaN where inactive, None) or (category index, category labels)."""
        raw = [p.get(name) for p in self.params]
        if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in raw):
            return np.array([np.nan if v is None else float(v) for v in raw]), None
        keys = sorted({json.dumps(v) for v in raw if v is not None})
        index = {key: k for k, key in enumerate(keys)}
        labels = [_display(json.loads(key)) for key in keys]
        return np.array([np.nan if v is None else index[json.dumps(v)] for v in raw],
                        dtype=float), labels

    def varying(self) -> list[str]:
        out = []
        for n in self.names:
            values, _ = self.column(n)
            v = values[np.isfinite(values)]
            if len(v) and v.min() < v.max():
                out.append(n)
        return out

    def is_log(self, name: str, values: np.ndarray) -> bool:
        if self.space is not None and name in self.space:
            return bool(self.space[name].log)
        return spans_decades(values, 2.0)


def _display(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _space(config_text: str):
    """The study's SearchSpace from the stored config, or None if it cannot be parsed here."""
    try:
        from ..hpo.space import parse_space
        from ..tomlread import Table
        cfg = tomllib.loads(config_text)
        return parse_space(Table(cfg["space"], "space", "the stored config"))
    except Exception:  # noqa: BLE001 - an older/newer config: fall back to the values seen
        return None


def _trials(ctx: PlotContext) -> Trials | None:
    if "trials" not in ctx.cache:
        ctx.cache["trials"] = Trials(ctx)
    t = ctx.cache["trials"]
    if not len(t.number):
        if not ctx.cache.get("hpo_noted"):
            ctx.note("hpo figures skipped: no finished trial yet")
            ctx.cache["hpo_noted"] = True
        return None
    return t


# -- history ---------------------------------------------------------------------------------

def history(ctx: PlotContext) -> None:
    t = _trials(ctx)
    if t is None:
        return
    fig, axes = new_figure(1, 1, width=7.5, height=4.2)
    ax = axes[0, 0]
    ax.plot(t.number[t.complete], t.value[t.complete], "o", ms=4, color="C0", label="complete")
    if t.pruned.any():
        ax.plot(t.number[t.pruned], t.value[t.pruned], "x", ms=5, color="0.55",
                label="pruned (last reported value)")
    if t.complete.any():
        scored = np.where(t.complete, t.sign * t.value, np.inf)
        best = t.sign * np.minimum.accumulate(scored)
        shown = np.isfinite(best)
        ax.step(t.number[shown], best[shown], where="post", color="C3", label="best so far")
    if t.failed.any():
        ax.plot(t.number[t.failed], np.zeros(int(t.failed.sum())), "v", color="C3", ms=6,
                transform=ax.get_xaxis_transform(), clip_on=False, label="failed")
    log_if_wide(ax, t.value[t.complete | t.pruned])
    ax.set_xlabel("trial number")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("objective value")
    ax.set_title(f"{ctx.path.name}: optimization history ({t.direction}, "
                 f"{int(t.complete.sum())} complete, {int(t.pruned.sum())} pruned, "
                 f"{int(t.failed.sum())} failed)", fontsize="medium")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    ctx.save(fig, "hpo_history")


# -- importances -----------------------------------------------------------------------------

def rebuilt_study(t: Trials):
    """An in-memory Optuna study holding the complete trials (optuna.trial.create_trial)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    inferred: dict = {}
    if t.space is None:
        for n in t.names:
            values, labels = t.column(n)
            v = values[np.isfinite(values)]
            if labels is not None and len(labels) > 1:
                keys = sorted({json.dumps(p[n]) for p in t.params if n in p})
                inferred[n] = CategoricalDistribution(keys)
            elif labels is None and len(v) and v.min() < v.max():
                inferred[n] = FloatDistribution(float(v.min()), float(v.max()),
                                                log=spans_decades(v, 2.0))
    trials = []
    for params, value, ok in zip(t.params, t.value, t.complete):
        if not ok:
            continue
        if t.space is not None:
            encoded = t.space.encode(params)
            dists = {n: t.space[n].distribution() for n in encoded}
        else:
            encoded = {n: (json.dumps(v) if isinstance(inferred[n], CategoricalDistribution)
                           else float(v)) for n, v in params.items() if n in inferred}
            dists = {n: inferred[n] for n in encoded}
        try:
            trials.append(optuna.trial.create_trial(params=encoded, distributions=dists,
                                                    value=float(value)))
        except ValueError:      # a value outside today's space: leave that trial out
            continue
    study = optuna.create_study(direction=t.direction)
    study.add_trials(trials)
    return study


def importances(ctx: PlotContext) -> None:
    t = _trials(ctx)
    if t is None:
        return
    n_complete = int(t.complete.sum())
    searched = [n for n in t.varying()
                if t.space is None or (n in t.space and t.space[n].kind != "fixed")]
    if n_complete < MIN_TRIALS_FOR_IMPORTANCE or len(searched) < 2:
        ctx.note(f"parameter importances skipped: need >= {MIN_TRIALS_FOR_IMPORTANCE} complete "
                 f"trials and >= 2 searched parameters (have {n_complete} and {len(searched)})")
        return
    import optuna
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = rebuilt_study(t)
        result = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    finally:
        optuna.logging.set_verbosity(level)
    if not result:
        ctx.note("parameter importances skipped: Optuna found no parameter common to all trials")
        return
    names = list(result)[::-1]
    fig, axes = new_figure(1, 1, width=6.4, height=max(2.5, 0.45 * len(names) + 1.2))
    ax = axes[0, 0]
    ax.barh(names, [result[n] for n in names], color="C0")
    for y, n in enumerate(names):
        ax.text(result[n], y, f" {result[n]:.2f}", va="center", fontsize="small")
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("importance (fANOVA, share of the objective's variance)")
    ax.set_ylabel("parameter")
    ax.set_title(f"parameter importances from {len(study.trials)} complete trials")
    ctx.save(fig, "hpo_importances")


# -- parallel coordinates and slices ----------------------------------------------------------

def _axis_values(t: Trials, name: str):
    """(values scaled to [0, 1], tick texts (low, high) or category labels)."""
    values, labels = t.column(name)
    if labels is not None:
        scale = max(len(labels) - 1, 1)
        return values / scale, labels
    v = values.copy()
    finite = v[np.isfinite(v)]
    use_log = t.is_log(name, finite) and len(finite) and finite.min() > 0
    if use_log:
        v = np.log10(v)
        finite = np.log10(finite)
    lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
    span = hi - lo or 1.0
    ends = (10 ** lo, 10 ** hi) if use_log else (lo, hi)
    return (v - lo) / span, [f"{ends[0]:.3g}", f"{ends[1]:.3g}"]


def parallel_coordinates(ctx: PlotContext) -> None:
    t = _trials(ctx)
    if t is None:
        return
    names = t.varying()
    if not names or t.complete.sum() < 2:
        ctx.note("parallel coordinates skipped: need >= 2 complete trials and a searched parameter")
        return
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    keep = np.flatnonzero(t.complete)
    order = keep[np.argsort(-t.sign * t.value[keep], kind="stable")][-MAX_LINES:]  # best on top
    columns = [_axis_values(t, n) for n in names]
    value = t.value
    vlo, vhi = float(value[keep].min()), float(value[keep].max())
    scaled_value = (value - vlo) / ((vhi - vlo) or 1.0)
    ys = np.column_stack([c[0] for c in columns] + [scaled_value])[order]
    xs = np.arange(ys.shape[1])
    segments = [np.column_stack([xs, y]) for y in ys]
    norm = Normalize(vlo, vhi)
    cmap = colormaps["viridis_r" if t.sign > 0 else "viridis"]
    fig, axes = new_figure(1, 1, width=max(6.0, 1.4 * len(xs) + 2), height=4.6)
    ax = axes[0, 0]
    lines = LineCollection(segments, cmap=cmap, norm=norm, linewidths=1.0, alpha=0.8)
    lines.set_array(value[order])
    ax.add_collection(lines)
    for x, (_, ticks) in zip(xs, columns + [(None, [f"{vlo:.3g}", f"{vhi:.3g}"])]):
        ax.axvline(x, color="0.3", lw=0.8)
        if len(ticks) == 2 and not _is_categorical(t, names, x):
            ax.text(x, -0.06, ticks[0], ha="center", va="top", fontsize="x-small")
            ax.text(x, 1.06, ticks[1], ha="center", va="bottom", fontsize="x-small")
        else:
            for k, lab in enumerate(ticks):
                ax.text(x + 0.03, k / max(len(ticks) - 1, 1), _short(lab), fontsize="x-small",
                        va="center")
    ax.set_xlim(-0.3, xs[-1] + 0.5)
    ax.set_ylim(-0.15, 1.15)
    ax.set_yticks([])
    ax.set_xticks(xs, names + ["objective"], rotation=20)
    fig.colorbar(lines, ax=ax, label="objective value")
    ax.set_title(f"parallel coordinates of {len(order)} complete trials (axes scaled min-max)")
    ctx.save(fig, "hpo_parallel_coordinates")


def _is_categorical(t: Trials, names: list[str], x: int) -> bool:
    return x < len(names) and t.column(names[x])[1] is not None


def _short(text: str, n: int = 18) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def slices(ctx: PlotContext) -> None:
    t = _trials(ctx)
    if t is None:
        return
    names = t.varying()
    if not names:
        ctx.note("slice plots skipped: no searched parameter varies across trials")
        return
    nrows, ncols = grid_shape(len(names))
    fig, axes = new_figure(nrows, ncols, width=4.0, height=3.3)
    shown = t.complete | t.pruned
    art = None
    for ax, n in zip(np.ravel(axes), names):
        values, labels = t.column(n)
        art = ax.scatter(values[t.complete], t.value[t.complete], c=t.number[t.complete], s=14,
                         cmap="viridis", edgecolor="0.3", linewidth=0.2,
                         vmin=t.number.min(), vmax=t.number.max())
        if t.pruned.any():
            ax.scatter(values[t.pruned], t.value[t.pruned], marker="x", s=14, color="0.6",
                       label="pruned")
        if labels is not None:
            ax.set_xticks(range(len(labels)), [_short(lab, 14) for lab in labels],
                          rotation=20, fontsize="x-small")
        elif t.is_log(n, values[np.isfinite(values)]):
            ax.set_xscale("log")
        log_if_wide(ax, t.value[shown])
        ax.set_xlabel(n)
        ax.set_ylabel("objective value")
        ax.set_title(f"objective vs {n}", fontsize="medium")
    hide_unused(axes, len(names))
    if art is not None:
        fig.colorbar(art, ax=list(np.ravel(axes)[: len(names)]), label="trial number")
    fig.suptitle(f"{ctx.path.name}: slices (pruned trials: grey x at their last value)")
    ctx.save(fig, "hpo_slices")


# -- intermediate values -----------------------------------------------------------------------

def intermediate_values(ctx: PlotContext) -> None:
    t = _trials(ctx)
    if t is None:
        return
    having = [k for k, iv in enumerate(t.intermediate) if iv]
    if not having:
        ctx.note("intermediate values skipped: no trial reported any (objective without report)")
        return
    if len(having) > MAX_LINES:
        having = having[-MAX_LINES:]
    fig, axes = new_figure(1, 1, width=7.5, height=4.5)
    ax = axes[0, 0]
    all_values = []
    for k in having:
        steps, values = np.array(t.intermediate[k], dtype=float).T
        all_values.append(values)
        if t.pruned[k]:
            ax.plot(steps, values, "-", color="C1", lw=0.9, alpha=0.8)
            ax.plot(steps[-1:], values[-1:], "x", color="C1", ms=7)
        elif t.failed[k]:
            ax.plot(steps, values, "-", color="C3", lw=0.9, alpha=0.8)
        else:
            ax.plot(steps, values, "-", color="C0", lw=0.9, alpha=0.6)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color="C0", label="complete"),
               Line2D([], [], color="C1", marker="x", label="pruned (x: stopped here)"),
               Line2D([], [], color="C3", label="failed")]
    ax.legend(handles=handles, fontsize="small")
    log_if_wide(ax, np.concatenate(all_values))
    ax.set_xlabel("step (reported by the objective)")
    ax.set_ylabel("intermediate value")
    ax.set_title(f"{ctx.path.name}: intermediate values of {len(having)} trials "
                 f"({int(t.pruned.sum())} pruned)", fontsize="medium")
    ax.grid(alpha=0.3)
    ctx.save(fig, "hpo_intermediate_values")


FIGURES = (history, importances, parallel_coordinates, slices, intermediate_values)
