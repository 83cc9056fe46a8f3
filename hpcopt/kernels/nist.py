"""Compiled NIST StRD model formulas (scalar kernels, one branch per formula kind).

``_nist_value(kind, x0, x1, b)`` is the value of formula `kind` (index into
:data:`hpcopt.models.nist.FORMULAS`) at one point; x1 is the second predictor
(Nelson) and ignored otherwise.  One integer-dispatched function instead of 20
kernels keeps a single cached compilation for every NIST model: a function
passed as an argument would defeat numba's on-disk cache (one entry per process).
The numpy twins in :mod:`hpcopt.models.nist` are the test references.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_PI = math.pi


@njit(cache=True)
def _nist_value(kind, x0, x1, b):  # noqa: C901 - a flat switch is the point
    if kind == 0:    # Bennett5
        return b[0] * (b[1] + x0) ** (-1.0 / b[2])
    if kind == 1:    # BoxBOD, Misra1a
        return b[0] * (1.0 - math.exp(-b[1] * x0))
    if kind == 2:    # Chwirut1/2
        return math.exp(-b[0] * x0) / (b[1] + b[2] * x0)
    if kind == 3:    # DanWood
        return b[0] * x0 ** b[1]
    if kind == 4:    # ENSO
        a = 2.0 * _PI * x0
        return (b[0] + b[1] * math.cos(a / 12.0) + b[2] * math.sin(a / 12.0)
                + b[4] * math.cos(a / b[3]) + b[5] * math.sin(a / b[3])
                + b[7] * math.cos(a / b[6]) + b[8] * math.sin(a / b[6]))
    if kind == 5:    # Eckerle4
        u = (x0 - b[2]) / b[1]
        return (b[0] / b[1]) * math.exp(-0.5 * (u * u))
    if kind == 6:    # Gauss1/2/3
        u = x0 - b[3]
        v = x0 - b[6]
        return (b[0] * math.exp(-b[1] * x0) + b[2] * math.exp(-(u * u) / (b[4] * b[4]))
                + b[5] * math.exp(-(v * v) / (b[7] * b[7])))
    if kind == 7:    # Hahn1, Thurber
        x2 = x0 * x0
        x3 = x2 * x0
        return ((b[0] + b[1] * x0 + b[2] * x2 + b[3] * x3)
                / (1.0 + b[4] * x0 + b[5] * x2 + b[6] * x3))
    if kind == 8:    # Kirby2
        x2 = x0 * x0
        return (b[0] + b[1] * x0 + b[2] * x2) / (1.0 + b[3] * x0 + b[4] * x2)
    if kind == 9:    # Lanczos1/2/3
        return (b[0] * math.exp(-b[1] * x0) + b[2] * math.exp(-b[3] * x0)
                + b[4] * math.exp(-b[5] * x0))
    if kind == 10:   # MGH09
        x2 = x0 * x0
        return b[0] * (x2 + x0 * b[1]) / (x2 + x0 * b[2] + b[3])
    if kind == 11:   # MGH10
        return b[0] * math.exp(b[1] / (x0 + b[2]))
    if kind == 12:   # MGH17
        return b[0] + b[1] * math.exp(-x0 * b[3]) + b[2] * math.exp(-x0 * b[4])
    if kind == 13:   # Misra1b
        return b[0] * (1.0 - (1.0 + b[1] * x0 / 2.0) ** (-2.0))
    if kind == 14:   # Misra1c
        return b[0] * (1.0 - (1.0 + 2.0 * b[1] * x0) ** (-0.5))
    if kind == 15:   # Misra1d
        return b[0] * b[1] * x0 * ((1.0 + b[1] * x0) ** (-1.0))
    if kind == 16:   # Nelson (log y)
        return b[0] - b[1] * x0 * math.exp(-b[2] * x1)
    if kind == 17:   # Rat42
        return b[0] / (1.0 + math.exp(b[1] - b[2] * x0))
    if kind == 18:   # Rat43
        return b[0] / ((1.0 + math.exp(b[1] - b[2] * x0)) ** (1.0 / b[3]))
    if kind == 19:   # Roszman1
        return b[0] - b[1] * x0 - math.atan(b[2] / (x0 - b[3])) / _PI
    return np.nan


@njit(cache=True)
def _nist_eval(kind, x, b, out):
    """out[i] = model(x[i, :]) for a (n, k) predictor array (k = 1 or 2)."""
    last = x.shape[1] - 1
    for i in range(x.shape[0]):
        out[i] = _nist_value(kind, x[i, 0], x[i, last], b)


N_KINDS = 20


def as_predictors(x: np.ndarray) -> np.ndarray:
    """The (n, k) C-contiguous float64 layout the kernels take (1-D x becomes (n, 1))."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] not in (1, 2):
        raise ValueError(f"predictors must be (n,) or (n, 1..2), got shape {x.shape}")
    return np.ascontiguousarray(x)


def nist_eval(kind: int, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Compiled model values of NIST formula `kind` at predictors `x` ((n,) or (n, k))."""
    if not 0 <= int(kind) < N_KINDS:
        raise ValueError(f"formula kind must be in 0..{N_KINDS - 1}, got {kind}")
    x2 = as_predictors(x)
    out = np.empty(x2.shape[0])
    _nist_eval(int(kind), x2, np.ascontiguousarray(b, dtype=np.float64), out)
    return out
