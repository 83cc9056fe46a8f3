"""Local refinement of one start point, and parameter uncertainties at the best fit.

Pure Python + scipy, no MPI: the sweep engine calls :func:`refine` once per task.
Parameters whose lower and upper bounds are equal are held fixed.  A start whose
model is not finite is a *failed* start (status "failed", a message, chi2 = inf),
never a best result; model exceptions other than hpcopt's own usage errors also
fail the start instead of the campaign.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
from scipy.optimize import least_squares, minimize

from ..errors import HpcoptError
from ..models.base import FitProblem
from .methods import BUDGET, LEAST_SQUARES, METHODS, SCIPY_NAMES, check_options

# least_squares tolerances: tight, so certified NIST values are reached (>= eps, as scipy needs)
LSQ_TOL = 1e-15


@dataclass(frozen=True)
class LocalResult:
    """The outcome of one start."""

    x: np.ndarray       # refined point (the start itself for method "none" or a failed start)
    chi2: float         # chi2 at x; inf for a failed start
    nfev: int           # model evaluations (finite-difference Jacobians included)
    status: str         # "ok" (finite chi2) | "failed"
    message: str        # the optimizer's message, or why the start failed
    success: bool       # the optimizer reports convergence (and chi2 is finite)


class _Tracked:
    """Counts evaluations and remembers the best finite point seen (optimizers can end on NaN)."""

    def __init__(self, problem: FitProblem, x0: np.ndarray, free: np.ndarray,
                 origin: np.ndarray, scale: np.ndarray):
        self.problem = problem
        self.full = x0.copy()
        self.free = free
        self.origin, self.scale = origin, scale
        self.nfev = 0
        self.best_chi2 = np.inf
        self.best_x = x0.copy()

    def point(self, z: np.ndarray) -> np.ndarray:
        x = self.full.copy()
        x[self.free] = self.origin + self.scale * z
        return x

    def _note(self, x: np.ndarray, value: float) -> None:
        if np.isfinite(value) and value < self.best_chi2:
            self.best_chi2, self.best_x = value, x

    def residuals(self, z: np.ndarray) -> np.ndarray:
        x = self.point(z)
        self.nfev += 1
        r = self.problem.residuals(x)
        with np.errstate(all="ignore"):
            self._note(x, float(np.dot(r, r)))
        return r

    def jacobian_or(self, fd_jac: str):
        """The exact Jacobian in z coordinates if the problem has one, else `fd_jac`."""
        if not getattr(self.problem, "has_jacobian", False):
            return fd_jac

        def jac(z: np.ndarray) -> np.ndarray:
            self.nfev += 1
            return self.problem.jacobian(self.point(z))[:, self.free] * self.scale
        return jac

    def chi2(self, z: np.ndarray) -> float:
        x = self.point(z)
        self.nfev += 1
        value = float(self.problem.chi2(x))
        self._note(x, value)
        return value


def refine(problem: FitProblem, x0, lower, upper, method: str, *,
           max_nfev: int | None = None, options: dict | None = None,
           fd_jac: str = "3-point") -> LocalResult:
    """Refine start `x0` within [lower, upper] by `method` (one of :data:`METHODS`).

    `max_nfev` is the optimizer's own budget (scipy's counting: maxfev, maxfun or
    max_nfev, whichever the method calls it); `options` are scipy options of the method
    under scipy's names (sweep/methods.py), over hpcopt's tight defaults; tolerances on
    x apply to the scaled coordinates the optimizer sees (see below).  `fd_jac` is the
    finite-difference scheme of least_squares when the problem has no exact
    Jacobian (``problem.has_jacobian``/``problem.jacobian(p)``, an optional extension
    of FitProblem).  LocalResult.nfev counts every model evaluation.
    """
    if method not in METHODS:
        raise ValueError(f"unknown local method {method!r}; expected one of {', '.join(METHODS)}")
    options = dict(options or {})
    check_options(method, options)
    if max_nfev and method in BUDGET:
        options.setdefault(BUDGET[method], max_nfev)
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    x0 = np.clip(np.asarray(x0, dtype=np.float64), lower, upper)
    if method == "none":
        return evaluate_only(problem, x0)
    free = lower < upper
    if not free.any():
        return evaluate_only(problem, x0)
    # Optimize z with x[free] = origin + scale * z.  minimize methods: the box becomes
    # [0, 1]^d, so simplex sizes, finite-difference steps and tolerances suit every
    # problem.  least_squares: z = x / |x0|, so its norm-based xtol sees every parameter
    # (not only the largest) while x_scale="jac" handles the curvature.
    finite = (np.isfinite(lower) & np.isfinite(upper))[free]
    width = (upper - lower)[free]
    if method in LEAST_SQUARES:
        origin = np.zeros(int(free.sum()))
        scale = np.where(x0[free] != 0, np.abs(x0[free]), np.where(finite, width, 1.0))
    else:
        origin = np.where(finite, lower[free], x0[free])
        scale = np.where(finite, width, np.maximum(np.abs(x0[free]), 1.0))
    track = _Tracked(problem, x0, free, origin, scale)
    z0 = (x0[free] - origin) / scale
    zlo, zhi = (lower[free] - origin) / scale, (upper[free] - origin) / scale
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if method in LEAST_SQUARES:
                settings = {"ftol": LSQ_TOL, "xtol": LSQ_TOL, "gtol": LSQ_TOL, **options}
                res = least_squares(track.residuals, z0, jac=track.jacobian_or(fd_jac),
                                    bounds=(zlo, zhi), x_scale="jac",
                                    method="trf" if method == "least_squares" else "dogbox",
                                    **settings)
            else:
                res = _minimize(track, method, z0, zlo, zhi, options)
    except HpcoptError:
        raise
    except Exception as exc:  # noqa: BLE001 - a start that breaks the model fails alone
        if track.best_chi2 < np.inf:
            return LocalResult(track.best_x, track.best_chi2, track.nfev, "ok",
                               f"stopped: {type(exc).__name__}: {exc}", False)
        return LocalResult(x0, np.inf, track.nfev, "failed", f"{type(exc).__name__}: {exc}",
                           False)
    x = np.clip(track.point(np.asarray(res.x, dtype=np.float64)), lower, upper)
    chi2 = float(problem.chi2(x))
    message, success = str(res.message), bool(res.success)
    # an optimizer can end on a point worse than one it visited (NaN steps, L-BFGS-B
    # line-search failures): then keep the best visited point.  The margin keeps
    # finite-difference probes (rounding-level differences) from replacing the answer.
    if track.best_chi2 < np.inf and not chi2 <= track.best_chi2 * (1 + 1e-9):
        x, chi2 = track.best_x, track.best_chi2
        message += " (kept the best point visited)"
    if not np.isfinite(chi2):
        return LocalResult(x0, np.inf, track.nfev, "failed", f"model not finite: {message}",
                           False)
    return LocalResult(x, chi2, track.nfev, "ok", message, success)


def _minimize(track: _Tracked, method: str, z0, zlo, zhi, options: dict):
    """scipy.optimize.minimize with hpcopt's tight defaults under the user's `options`."""
    f0 = track.chi2(z0)
    if not np.isfinite(f0):
        raise FloatingPointError("the model is not finite at the start point")
    defaults = {"nelder-mead": {"xatol": 1e-10, "fatol": 1e-12 * max(1.0, abs(f0))},
                "powell": {"xtol": 1e-10, "ftol": 1e-14},
                "lbfgsb": {"ftol": 1e-15, "gtol": 1e-12}}[method]
    return minimize(track.chi2, z0, method=SCIPY_NAMES[method], bounds=list(zip(zlo, zhi)),
                    options={**defaults, **options})


def start_chi2(problem: FitProblem, x0: np.ndarray) -> tuple[float, str]:
    """Method "none" at one start: (chi2, "") or (inf, why the start failed).  Errors of
    hpcopt itself propagate.  Call it inside np.errstate(all="ignore")."""
    try:
        chi2 = float(problem.chi2(x0))
    except HpcoptError:
        raise
    except Exception as exc:  # noqa: BLE001 - a start that breaks the model fails alone
        return math.inf, f"{type(exc).__name__}: {exc}"
    if not math.isfinite(chi2):
        return math.inf, "model not finite at the start point"
    return chi2, ""


def evaluate_only(problem: FitProblem, x0: np.ndarray) -> LocalResult:
    """Method "none": chi2 at `x0` (a float64 point within the bounds), no refinement."""
    with np.errstate(all="ignore"):
        chi2, why = start_chi2(problem, x0)
    if why:
        return LocalResult(x0, np.inf, 1, "failed", why, False)
    return LocalResult(x0, chi2, 1, "ok", "evaluated", True)


def refine_many(problem: FitProblem, starts: np.ndarray, lower, upper, method: str, *,
                max_nfev: int | None = None,
                options: dict | None = None) -> tuple[int, list[LocalResult]]:
    """Refine every row of `starts` serially; (index of the lowest chi2 or -1, all results)."""
    results = [refine(problem, s, lower, upper, method, max_nfev=max_nfev, options=options)
               for s in starts]
    chi2 = np.array([r.chi2 if r.status == "ok" else np.inf for r in results])
    best = int(np.argmin(chi2)) if len(chi2) and np.isfinite(chi2.min()) else -1
    return best, results


# --- uncertainties --------------------------------------------------------------------------

class Uncertainties(NamedTuple):
    stderr: np.ndarray       # one per parameter (0 for fixed ones, nan if unavailable)
    covariance: np.ndarray   # (p, p), scaled by the reduced chi2
    singular: bool           # J was rank-deficient (pseudo-inverse used) or not finite
    chi2_reduced: float


def jacobian(problem: FitProblem, x: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
    """Jacobian of the residuals (columns of free parameters): the problem's exact one
    if it has one (``has_jacobian``), else central finite differences."""
    x = np.asarray(x, dtype=np.float64)
    free = np.ones(x.shape, bool) if free is None else np.asarray(free, bool)
    if getattr(problem, "has_jacobian", False):
        with np.errstate(all="ignore"):
            return np.asarray(problem.jacobian(x), dtype=np.float64)[:, free]
    cols = []
    for j in np.flatnonzero(free):
        h = np.cbrt(np.finfo(float).eps) * (abs(x[j]) if x[j] != 0 else 1.0)
        xp, xm = x.copy(), x.copy()
        xp[j] += h
        xm[j] -= h
        with np.errstate(all="ignore"):
            cols.append((problem.residuals(xp) - problem.residuals(xm)) / (xp[j] - xm[j]))
    n = problem.n_points
    return np.column_stack(cols) if cols else np.zeros((n, 0))


def uncertainties(problem: FitProblem, x, *, free: Sequence[bool] | None = None,
                  chi2: float | None = None) -> Uncertainties:
    """Standard errors and covariance from the Jacobian at the best fit `x`.

    covariance = inv(J^T J) * reduced chi2 (dof = points - free parameters - nuisance);
    a rank-deficient J uses the pseudo-inverse and sets ``singular``.
    """
    x = np.asarray(x, dtype=np.float64)
    p = x.shape[0]
    free = np.ones(p, bool) if free is None else np.asarray(free, bool)
    chi2 = float(problem.chi2(x)) if chi2 is None else float(chi2)
    dof = problem.n_points - int(free.sum()) - problem.n_nuisance
    red = chi2 / dof if dof > 0 else np.nan
    cov = np.zeros((p, p))
    stderr = np.zeros(p)
    J = jacobian(problem, x, free)
    if not np.all(np.isfinite(J)) or not np.isfinite(red):
        stderr[free] = np.nan
        cov[np.ix_(free, free)] = np.nan
        return Uncertainties(stderr, cov, True, red)
    # scale columns to unit norm first: the SVD then sees the conditioning of the problem,
    # not of the parameter units
    norms = np.linalg.norm(J, axis=0)
    norms[norms == 0] = 1.0
    _, s, vt = np.linalg.svd(J / norms, full_matrices=False)
    cutoff = np.finfo(float).eps * max(J.shape) * (s[0] if s.size else 0.0)
    keep = s > cutoff
    singular = bool(not keep.all()) or J.shape[0] < J.shape[1]
    inv_s2 = np.where(keep, 1.0 / np.where(keep, s, 1.0) ** 2, 0.0)
    cov_free = (vt.T * inv_s2) @ vt / np.outer(norms, norms) * red
    cov[np.ix_(free, free)] = cov_free
    stderr[free] = np.sqrt(np.clip(np.diag(cov_free), 0.0, None))
    # a parameter the residuals do not depend on here (e.g. stuck at a bound where the
    # model is flat) is not determined by the data: nan, not a misleading 0
    blind = np.linalg.norm(J, axis=0) == 0
    if blind.any():
        idx = np.flatnonzero(free)[blind]
        stderr[idx] = np.nan
        singular = True
    return Uncertainties(stderr, cov, singular, red)
