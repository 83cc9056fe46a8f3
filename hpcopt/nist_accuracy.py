"""How well fits reproduce the certified NIST StRD results, and the fitting procedure that
reaches them from the two published starts only (docs/nist-accuracy.md).

Used by the accuracy tests and `bench/nist_table.py`; the models and data themselves are
hpcopt.models.nist. Procedures that fit live here, above both the models and the sweep's
local refinement, so that models never depend on fitting policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .models.curve import CurveProblem
from .models.nist import NistModel, NistProblem, enso, gauss, get_model, lanczos, mgh17


def starts_box(problem: NistProblem, widen: float = 10.0
               ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Search bounds derived from Start 1 and Start 2 only (never the certified values).

    Per parameter: if both starts are > 0, the box spans them widened by the factor
    `widen` on each side in log space (scale "log"); otherwise it is the linear box
    ``midpoint +- widen * max(|start1|, |start2|)`` (scale "linear"), which lets the
    parameter change sign.  Returns (lower, upper, scales).
    """
    s = np.vstack([problem.start1, problem.start2])
    lo, hi = s.min(axis=0), s.max(axis=0)
    lower, upper, scales = np.empty_like(lo), np.empty_like(hi), []
    for i, (a, b) in enumerate(zip(lo, hi)):
        if a > 0:
            lower[i], upper[i] = a / widen, b * widen
            scales.append("log")
        else:
            mid, half = (a + b) / 2, widen * max(abs(a), abs(b), 1e-300)
            lower[i], upper[i] = mid - half, mid + half
            scales.append("linear")
    return lower, upper, tuple(scales)


def canonical(model: NistModel | str, b) -> np.ndarray:
    """The same curve written in the convention of the NIST listing.

    Some formulas are invariant under relabelling terms or flipping signs, so a
    multi-start fit can land on an equivalent vector: Gauss (peaks swap, widths enter
    squared), Lanczos and MGH17 (exponential terms swap), ENSO (cycles swap; a
    negative period flips its sine amplitude).  NIST lists Gauss peaks by increasing
    position, exponential terms by increasing rate, ENSO cycles by decreasing
    positive period; the model values are unchanged by this map.
    """
    model = get_model(model) if isinstance(model, str) else model
    b = np.array(b, dtype=float)
    fn = model.function
    if fn is gauss:
        b[4], b[7] = abs(b[4]), abs(b[7])
        if b[6] < b[3]:
            b[[2, 3, 4, 5, 6, 7]] = b[[5, 6, 7, 2, 3, 4]]
    elif fn is lanczos:
        terms = sorted(((b[2 * k + 1], b[2 * k]) for k in range(3)))
        b[:] = [v for rate, amp in terms for v in (amp, rate)]
    elif fn is mgh17:
        if b[4] < b[3]:
            b[[1, 2, 3, 4]] = b[[2, 1, 4, 3]]
    elif fn is enso:
        for k in (3, 6):  # cos(2 pi x / -P) = cos(2 pi x / P), sin flips
            if b[k] < 0:
                b[k], b[k + 2] = -b[k], -b[k + 2]
        if b[6] > b[3]:
            b[[3, 4, 5, 6, 7, 8]] = b[[6, 7, 8, 3, 4, 5]]
    return b


def lre(estimate, certified) -> np.ndarray:
    """Log relative error -log10(|est - cert| / |cert|), capped at 15 (agreement to 15 digits)."""
    est = np.asarray(estimate, dtype=float)
    cert = np.asarray(certified, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(est - cert) / np.abs(cert)
        out = -np.log10(rel)
    out = np.where(np.isfinite(est), out, 0.0)
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=15.0), 0.0, 15.0)


def rss_resolution(y: np.ndarray, residuals: np.ndarray) -> float:
    """Rounding bound on a computed residual sum of squares.

    Each residual y - f carries an absolute rounding error of a few ulps of |y|, so
    RSS = sum r**2 is only known to about 2 * sum |r_i| * delta_i with
    delta_i = 4 eps |y_i|.  Lanczos1's certified RSS (1.4e-25) sits at this floor:
    its digits beyond the first few are not reproducible in double precision.
    """
    delta = 4 * np.finfo(float).eps * np.abs(np.asarray(y, dtype=float))
    r = np.abs(np.asarray(residuals, dtype=float))
    return float(np.sum(2 * r * delta + delta * delta))


# --- the StRD accuracy procedure (tests/models/test_nist_accuracy.py, bench/nist_table.py) ---

#: starts are drawn from the box of the two NIST starts widened by NARROW; the local
#: refinement may roam the box widened by WIDE (see :func:`starts_box`)
NARROW, WIDE = 2.0, 10.0
MAX_NFEV = 300  # least_squares budget per start (scipy counting; its default is 100 per parameter)


def default_n_starts(n_params: int) -> int:
    """Sobol starts for a problem: the power of two >= 4 per parameter (8 to 64 here)."""
    return 1 << int(np.ceil(np.log2(4 * n_params)))


def multistart(problem: NistProblem, *, n_starts: int | None = None, seed: int = 0,
               max_nfev: int = MAX_NFEV):
    """Multi-start least-squares fit using only the problem's two published starts.

    Sobol starts over ``starts_box(problem, NARROW)``, each refined by least_squares
    within ``starts_box(problem, WIDE)``; returns (best LocalResult, all results).
    """
    from .sweep.local import refine_many
    from .sweep.starts import ParamSpec, StartDesign

    fit = CurveProblem.from_nist(problem)
    lo, hi, scales = starts_box(problem, NARROW)
    specs = [ParamSpec(n, min=a, max=b, scale=s)
             for n, a, b, s in zip(problem.param_names, lo, hi, scales)]
    n = n_starts or default_n_starts(len(specs))
    design = StartDesign("sobol", specs, n, seed=seed)
    lower, upper, _ = starts_box(problem, WIDE)
    best, results = refine_many(fit, design.points(0, n), lower, upper, "least_squares",
                                max_nfev=max_nfev)
    return (results[best] if best >= 0 else None), results


def single_fit(problem: NistProblem, start: int, *, max_nfev: int | None = MAX_NFEV):
    """One least_squares fit from Start 1 or Start 2 within ``starts_box(problem, WIDE)``."""
    from .sweep.local import refine

    x0 = {1: problem.start1, 2: problem.start2}[start]
    lower, upper, _ = starts_box(problem, WIDE)
    return refine(CurveProblem.from_nist(problem), x0, lower, upper, "least_squares",
                  max_nfev=max_nfev)


@dataclass(frozen=True)
class Accuracy:
    """How many significant digits of the certified results a fit reproduces."""

    params_lre: float        # min LRE over the parameters (in the listing's convention)
    rss_lre: float           # LRE of the residual sum of squares
    rss_at_floor: bool       # RSS agrees within double-precision rounding (rss_resolution)

    def passes(self, digits: float) -> bool:
        return self.params_lre >= digits and (self.rss_lre >= digits or self.rss_at_floor)

    @property
    def digits(self) -> float:
        """min(params, RSS) LRE; an RSS at the rounding floor does not limit it."""
        return self.params_lre if self.rss_at_floor else min(self.params_lre, self.rss_lre)


def accuracy(problem: NistProblem, x: np.ndarray, rss: float) -> Accuracy:
    """Compare a fit (x, rss) with the certified values, like with like.

    Parameters are put in the listing's convention first (:func:`canonical`).  An RSS
    within :func:`rss_resolution` of the certified one agrees as far as double
    precision can tell (Lanczos1), whatever its LRE.
    """
    params_lre = float(lre(canonical(problem.model, x), problem.certified).min())
    rss_lre = float(lre(rss, problem.certified_rss))
    fit = CurveProblem.from_nist(problem)
    with np.errstate(all="ignore"):
        floor = rss_resolution(fit.y, fit.residuals(x))
    at_floor = bool(abs(rss - problem.certified_rss) <= floor)
    return Accuracy(params_lre, rss_lre, at_floor)


def required_digits(problem: NistProblem) -> int:
    """Issue 4's bar: 6 significant digits (lower/average difficulty), 4 (higher)."""
    return 4 if problem.difficulty == "higher" else 6
