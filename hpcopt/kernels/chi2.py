"""Compiled chi-squared loops: sum(((y - model) * w)**2) with w = 1/sigma.

Private njit kernels behind validating wrappers.  A non-finite model value makes
the chi2 ``inf`` (a failed start, never a best result).

* NIST formulas: :func:`chi2_nist` evaluates the model point by point inside the
  loop (no temporary array), cached on disk like every kernel here.
* numba-compiled user models ``f(x, p) -> y``: :func:`chi2_user` calls the user's
  dispatcher inside the compiled loop.  A kernel that takes a function argument
  cannot use numba's disk cache (the cache key would hold the function's address:
  one new entry per process), so that one kernel is compiled once per process.
* anything else: :func:`chi2_values` on model values computed by numpy.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .nist import N_KINDS, _nist_value, as_predictors


@njit(cache=True)
def _chi2_values(y, mu, w):
    s = 0.0
    for i in range(y.shape[0]):
        r = (y[i] - mu[i]) * w[i]
        s += r * r
    if not np.isfinite(s):
        return np.inf
    return s


@njit(cache=True)
def _chi2_nist(kind, x, b, y, w):
    last = x.shape[1] - 1
    s = 0.0
    for i in range(x.shape[0]):
        r = (y[i] - _nist_value(kind, x[i, 0], x[i, last], b)) * w[i]
        s += r * r
    if not np.isfinite(s):
        return np.inf
    return s


@njit(cache=False)  # takes a function: see the module docstring
def _chi2_user(f, x, p, y, w):
    mu = f(x, p)
    if mu.shape != y.shape:
        return np.nan  # the wrapper turns this into a clear error
    return _chi2_values(y, mu, w)


def _vec(a, n: int | None, what: str) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.ndim != 1 or (n is not None and a.shape[0] != n):
        raise ValueError(f"{what} must be a 1-D array" + (f" of length {n}" if n else "")
                         + f", got shape {a.shape}")
    return a


def chi2_values(y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> float:
    """chi2 of model values `mu` against data `y` with weights `w` = 1/sigma."""
    y = _vec(y, None, "y")
    return float(_chi2_values(y, _vec(mu, y.shape[0], "model values"), _vec(w, y.shape[0], "w")))


def chi2_nist(kind: int, x: np.ndarray, b: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """chi2 of NIST formula `kind` with parameters `b` (x: (n,) or (n, k) predictors)."""
    if not 0 <= int(kind) < N_KINDS:
        raise ValueError(f"formula kind must be in 0..{N_KINDS - 1}, got {kind}")
    x2 = as_predictors(x)
    y = _vec(y, x2.shape[0], "y")
    return float(_chi2_nist(int(kind), x2, _vec(b, None, "b"), y, _vec(w, y.shape[0], "w")))


def chi2_user(f, x: np.ndarray, p: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """chi2 of a numba-compiled user model ``f(x, p) -> y`` inside the compiled loop."""
    y = _vec(y, None, "y")
    value = float(_chi2_user(f, x, _vec(p, None, "p"), y, _vec(w, y.shape[0], "w")))
    if np.isnan(value):
        raise ValueError(f"the model returned an array not shaped like y {y.shape}")
    return value


def compile_kernels() -> None:
    """Compile (or load from numba's disk cache) every cached kernel of this module.

    Call it on one rank per node before the others start evaluating, so they load the
    cache instead of compiling concurrently.
    """
    from .nist import _nist_eval
    x = np.ones((2, 1))
    y = np.ones(2)
    b = np.ones(9)
    _chi2_nist(0, x, b, y, y)
    _chi2_values(y, y, y)
    _nist_eval(0, x, b, np.empty(2))
