"""ML warm starts, measured: chi2 evaluations and wall time to the best fit, warm vs cold.

A family of simulated homodyne XPCS datasets (n = 30 time points, 3 angles, noise
0.01) whose true parameters vary smoothly with temperature and concentration
(:func:`family`).  A history of 40 fits is built the way users build it: each
dataset at Sobol-spread conditions is fitted by a cold sweep and its best fit is
recorded (hpcopt.warmstart.add_fit into a real history file).  Then for new datasets
at conditions inside the history's region, for history sizes 5, 10, 20, 40:

* cold: the normal design (32 scrambled-Sobol starts over the demo bounds) refined in
  task order;
* warm: the WarmStartDesign (8 predicted starts, then 16 = design_fraction 0.5 of the
  same Sobol design); when the predictor declines, warm = cold.

"to best" = the sum of nfev (wall time) of the starts refined in task order until one
reaches the best chi2 known for that dataset within a relative 1e-5 (the best over
every refinement of it; here Δchi2 ≈ 0.03, far below 1); warm wall time includes
training the predictor.  "sweep" = every start of the design (what a sweep runs);
"same_size" compares with a cold sweep of as many starts as the warm one (its first
24 Sobol starts), which separates the effect of the predictions from that of
running fewer starts.
Both local methods: least_squares (the default for models) and nelder-mead.
Figures are medians over the test datasets; ratios are cold / warm (> 1: warm better).

``run() -> dict``; ``python bench/bench_warmstart.py`` prints it as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from hpcopt.models.xpcs import XpcsProblem, simulate
from hpcopt.sweep.local import refine
from hpcopt.sweep.starts import ParamSpec, StartDesign
from hpcopt.warmstart import (WarmStartDesign, add_fit, load_history, predict, sample_starts)
from hpcopt.warmstart.predictor import ParamAxes

N_TIMES = 30
NOISE = 0.01
HISTORY_SIZES = (5, 10, 20, 40)
N_TEST = 6
N_COLD = 32              # starts of the normal design
N_HISTORY_STARTS = 2     # cold starts per history fit (least_squares converges from all here)
N_WARM = 8
DESIGN_FRACTION = 0.5
TOL = 1e-5
METHODS = ("least_squares", "nelder-mead")
SEED = 1
# the bounds of hpcopt/data/demo.toml
SPECS = (ParamSpec("D0", 1e3, 3e4, scale="log"), ParamSpec("alpha", -1.5, 0.5),
         ParamSpec("D_offset", 0.0, 2000.0), ParamSpec("gamma_dot_0", 1e-6, 1e-3, scale="log"),
         ParamSpec("beta", -0.5, 1.5), ParamSpec("gamma_dot_offset", 0.0, 1e-4),
         ParamSpec("phi0", -30.0, 50.0))
NAMES = tuple(s.name for s in SPECS)
T_RANGE, C_RANGE = (20.0, 60.0), (0.02, 0.20)


def family(temperature: float, concentration: float) -> dict[str, float]:
    """True homodyne parameters, smooth in (temperature [C], concentration [w/w])."""
    t, c = (temperature - 40.0) / 20.0, (concentration - 0.11) / 0.09
    return {"D0": 6000.0 * math.exp(0.5 * t - 0.2 * c * c) * (1.0 - 0.3 * c),
            "alpha": -0.5 + 0.08 * t + 0.06 * t * t + 0.05 * c,
            "D_offset": 300.0 + 100.0 * t, "gamma_dot_0": 3e-4 * (1.0 + 0.4 * c),
            "beta": 0.5 + 0.1 * t, "gamma_dot_offset": 1e-5, "phi0": 10.0 + 4.0 * t}


def dataset(temperature: float, concentration: float, seed: int) -> XpcsProblem:
    data = simulate("homodyne", family(temperature, concentration), n=N_TIMES, noise=NOISE,
                    seed=seed, conditions={"temperature": temperature,
                                           "concentration": concentration})
    return XpcsProblem.from_data(data, "homodyne")


def conditions_of(problem: XpcsProblem) -> dict[str, float]:
    return dict(problem.data.conditions)


def _spread(n: int, seed: int, lo=(T_RANGE[0], C_RANGE[0]), hi=(T_RANGE[1], C_RANGE[1])):
    """n (temperature, concentration) pairs spread over the box (scrambled Halton)."""
    from scipy.stats import qmc
    u = qmc.Halton(2, scramble=True, rng=np.random.default_rng(seed)).random(n)
    return np.asarray(lo) + u * (np.asarray(hi) - np.asarray(lo))


@dataclasses.dataclass
class Run:
    chi2: float
    nfev: int
    wall: float
    x: np.ndarray


def refine_all(problem, starts: np.ndarray, method: str) -> list[Run]:
    lower = np.array([s.lower for s in SPECS])
    upper = np.array([s.upper for s in SPECS])
    out = []
    for x0 in starts:
        t0 = time.perf_counter()
        r = refine(problem, x0, lower, upper, method)
        out.append(Run(r.chi2 if r.status == "ok" else math.inf, r.nfev, time.perf_counter() - t0,
                       r.x))
    return out


def to_best(runs: list[Run], best: float, overhead: float = 0.0) -> tuple[float, float]:
    """(nfev, wall) until the first run within TOL of `best` (+ `overhead` seconds);
    (inf, inf) if none is."""
    nfev, wall = 0, overhead
    for r in runs:
        nfev += r.nfev
        wall += r.wall
        if r.chi2 <= best * (1 + TOL):
            return float(nfev), wall
    return math.inf, math.inf


def build_history(path: Path) -> float:
    """Fit 40 datasets by cold sweeps and record their best fits; the seconds it took."""
    t0 = time.perf_counter()
    conds = _spread(max(HISTORY_SIZES), seed=7)
    design = StartDesign("sobol", SPECS, N_HISTORY_STARTS, seed=SEED + 100)
    starts = design.points(0, design.n_tasks)
    for i, (T, c) in enumerate(conds):
        problem = dataset(T, c, seed=1000 + i)
        best = min(refine_all(problem, starts, "least_squares"), key=lambda r: r.chi2)
        add_fit(path, "xpcs:homodyne", NAMES, conditions_of(problem), best.x, best.chi2,
                source=f"bench dataset {i}")
    return time.perf_counter() - t0


def _first(history, n: int):
    """The first n records of a History (a smaller history built the same way)."""
    fields = {f.name: getattr(history, f.name) for f in dataclasses.fields(history)}
    for k in ("params", "conditions", "chi2", "chi2_reduced", "record_ids"):
        fields[k] = fields[k][:n]
    fields["timestamps"], fields["sources"] = history.timestamps[:n], history.sources[:n]
    return type(history)(**fields)


def _median(values) -> float | None:
    values = np.asarray(values, dtype=float)
    m = float(np.median(values)) if values.size else math.nan
    return None if not math.isfinite(m) else m


def _ratio(a, b) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def run() -> dict:
    """The figures (module docstring), with one BLAS thread: on a shared, loaded node a
    threaded BLAS inside least_squares costs up to 6x the wall time, which would swamp
    what is measured here."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        return _run()


def _run() -> dict:
    figures: dict = {"n_times": N_TIMES, "n_test_datasets": N_TEST, "n_cold_starts": N_COLD,
                     "n_warm_starts": N_WARM, "design_fraction": DESIGN_FRACTION,
                     "tolerance_rel_chi2": TOL}
    with tempfile.TemporaryDirectory() as tmp:
        hpath = Path(tmp) / "history.h5"
        dataset(40.0, 0.1, 0).chi2(np.array([s.lower for s in SPECS]))  # compile kernels
        figures["history_build_s"] = round(build_history(hpath), 2)
        full = load_history(hpath, "xpcs:homodyne", NAMES)
    cold_design = StartDesign("sobol", SPECS, N_COLD, seed=SEED)
    cold_starts = cold_design.points(0, N_COLD)
    tests = _spread(N_TEST, seed=11, lo=(25.0, 0.04), hi=(55.0, 0.18))
    problems = [dataset(T, c, seed=5000 + i) for i, (T, c) in enumerate(tests)]
    cold = {m: [refine_all(p, cold_starts, m) for p in problems] for m in METHODS}
    warm: dict = {}
    preds: dict = {}
    for n in HISTORY_SIZES:
        hist = _first(full, n)
        for i, p in enumerate(problems):
            t0 = time.perf_counter()
            pred = predict(hist, conditions_of(p), SPECS, min_history=5, seed=SEED)
            starts = sample_starts(pred, SPECS, N_WARM, seed=SEED)
            t_pred = time.perf_counter() - t0
            alt = predict(hist, conditions_of(p), SPECS, min_history=5, seed=SEED, trend="none")
            preds[n, i] = (pred, alt, t_pred)
            design = WarmStartDesign(cold_design, starts, DESIGN_FRACTION)
            for m in METHODS:
                # the design part of the warm sweep = the first starts of the same cold design
                warm[m, n, i] = (refine_all(p, starts, m) + cold[m][i][:design.n_design]
                                 if pred.ok else cold[m][i])
    # the best known fit of each dataset: over every refinement of it
    best = [min((r for m in METHODS for runs in [cold[m][i]] +
                 [warm[m, n, i] for n in HISTORY_SIZES] for r in runs), key=lambda r: r.chi2)
            for i in range(N_TEST)]
    for m in METHODS:
        figures.update(_search_figures("ls" if m == "least_squares" else "nm",
                                       cold[m], {k[1:]: v for k, v in warm.items() if k[0] == m},
                                       preds, best))
    figures.update(_prediction_figures(preds, best))
    figures.update(_evaluation_cost())
    return figures


def _evaluation_cost() -> dict:
    """Seconds per residual evaluation at n = 30 and n = 300 time points: the predictor's
    fixed cost (h*_predict_seconds) expressed in evaluations, for larger datasets."""
    out = {}
    x = np.array([family(40.0, 0.1)[k] for k in NAMES])
    for n in (N_TIMES, 10 * N_TIMES):
        p = XpcsProblem.from_data(simulate("homodyne", family(40.0, 0.1), n=n, noise=NOISE),
                                  "homodyne")
        p.residuals(x)
        reps = max(3, 3000 // n)
        t0 = time.perf_counter()
        for _ in range(reps):
            p.residuals(x)
        out[f"residuals_seconds_n{n}"] = (time.perf_counter() - t0) / reps
    return out


def _search_figures(key: str, cold: list, warm: dict, preds: dict, best: list) -> dict:
    """Cold vs warm: evaluations and wall time to the best fit, whole-sweep evaluations."""
    out: dict = {}
    chi2 = [b.chi2 for b in best]
    cold_to = [to_best(cold[i], chi2[i]) for i in range(N_TEST)]
    out[f"{key}_cold_sweep_found_best_frac"] = float(np.mean([math.isfinite(c[0]) for c in cold_to]))
    out[f"{key}_cold_starts_reaching_best_frac"] = float(np.mean(
        [r.chi2 <= chi2[i] * (1 + TOL) for i in range(N_TEST) for r in cold[i]]))
    cold_nfev, cold_wall = _median([c[0] for c in cold_to]), _median([c[1] for c in cold_to])
    cold_sweep = _median([sum(r.nfev for r in cold[i]) for i in range(N_TEST)])
    # a cold sweep as long as the warm one (its first starts): the fair comparison for a sweep
    same = N_WARM + math.ceil(DESIGN_FRACTION * N_COLD)
    out[f"{key}_cold{same}_sweep_found_best_frac"] = float(np.mean(
        [math.isfinite(to_best(cold[i][:same], chi2[i])[0]) for i in range(N_TEST)]))
    cold_same = _median([sum(r.nfev for r in cold[i][:same]) for i in range(N_TEST)])
    cold_sweep_wall = _median([sum(r.wall for r in cold[i]) for i in range(N_TEST)])
    out[f"{key}_cold_nfev_to_best_median"] = cold_nfev
    out[f"{key}_cold_wall_to_best_median_s"] = cold_wall
    out[f"{key}_cold_sweep_nfev_median"] = cold_sweep
    for n in HISTORY_SIZES:
        used = [preds[n, i][0].ok for i in range(N_TEST)]
        warm_to = [to_best(warm[n, i], chi2[i], preds[n, i][2] if used[i] else 0.0)
                   for i in range(N_TEST)]
        w_nfev, w_wall = _median([w[0] for w in warm_to]), _median([w[1] for w in warm_to])
        pre = f"{key}_h{n}"
        out[f"{pre}_warm_nfev_to_best_median"] = w_nfev
        out[f"{pre}_nfev_to_best_ratio"] = _ratio(cold_nfev, w_nfev)
        out[f"{pre}_warm_wall_to_best_median_s"] = w_wall
        out[f"{pre}_wall_to_best_ratio"] = _ratio(cold_wall, w_wall)
        out[f"{pre}_warm_sweep_found_best_frac"] = float(np.mean(
            [math.isfinite(w[0]) for w in warm_to]))
        out[f"{pre}_first_warm_start_reaches_best_frac"] = float(np.mean(
            [used[i] and warm[n, i][0].chi2 <= chi2[i] * (1 + TOL) for i in range(N_TEST)]))
        warm_sweep = _median([sum(r.nfev for r in warm[n, i]) for i in range(N_TEST)])
        out[f"{pre}_sweep_nfev_ratio"] = _ratio(cold_sweep, warm_sweep)
        out[f"{pre}_sweep_nfev_ratio_same_size"] = _ratio(cold_same, warm_sweep)
        out[f"{pre}_sweep_wall_ratio"] = _ratio(cold_sweep_wall, _median(
            [sum(r.wall for r in warm[n, i]) + (preds[n, i][2] if used[i] else 0.0)
             for i in range(N_TEST)]))
    return out


def _prediction_figures(preds: dict, best: list) -> dict:
    """Predicted point vs the best fit found, as fractions of each parameter's range."""
    axes = ParamAxes.from_specs(SPECS)
    out: dict = {}
    for n in HISTORY_SIZES:
        used = [i for i in range(N_TEST) if preds[n, i][0].ok]
        out[f"h{n}_predicted_frac"] = len(used) / N_TEST
        if not used:
            continue
        err, trees_only, covered = [], [], []
        for i in used:
            pred, alt, _ = preds[n, i]
            ub = axes.to_unit(best[i].x)[0]
            e = np.abs(np.clip(pred.unit_mean, 0, 1) - ub)
            err.append(e)
            covered.append(float(np.mean(e <= 2 * pred.unit_sigma)))
            if alt.ok:
                trees_only.append(np.abs(np.clip(alt.unit_mean, 0, 1) - ub))
        for label, e in (("", np.array(err)), ("_trees_only", np.array(trees_only))):
            if not e.size:
                continue
            out[f"h{n}_prediction_error{label}_median"] = _median(e.mean(axis=1))
            for k, name in enumerate(NAMES):
                if name in ("D0", "alpha"):
                    out[f"h{n}_prediction_error{label}_{name}_median"] = _median(e[:, k])
        out[f"h{n}_predicted_uncertainty_median"] = _median([preds[n, i][0].uncertainty
                                                             for i in used])
        out[f"h{n}_within_2sigma_frac"] = _median(covered)
        out[f"h{n}_predict_seconds_median"] = _median([preds[n, i][2] for i in used])
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
