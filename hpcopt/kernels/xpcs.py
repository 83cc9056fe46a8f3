"""Compiled XPCS two-time correlation kernels (DESIGN.md ``xpcs:homodyne``/``xpcs:heterodyne``).

Private ``@njit`` array-only kernels behind validating wrappers.  Notation: a *decay*
is the c2 model with contrast 1 and offset 0 (homodyne ``g1**2 * sinc(Phi)**2``, the
heterodyne bracket over ``N(i) N(j)``); ``c2 = offset + contrast * decay`` per angle,
with contrast and offset the weighted closed-form linear least squares (weights
``w = 1/sigma**2``).

Two evaluation paths:

* the literal kernels (``homodyne_decay``, ``heterodyne_decay``, ``contrast_offset``)
  follow the formulas term by term and build full ``(n_phi, n, n)`` arrays (model
  values, residuals for least_squares, plots);
* the fused kernels (``fit_homodyne``, ``fit_heterodyne``) give chi2 and the per-angle
  contrast/offset without building the model: the hot path of fitting.  The model is
  symmetric, so the data are folded once onto the upper triangle (:func:`fold_data`):
  ``w1 (d1 - m)**2 + w2 (d2 - m)**2 = W (D - m)**2 + w1 w2 (d1 - d2)**2 / W`` with
  ``W = w1 + w2``, ``D = (w1 d1 + w2 d2) / W`` (exact, no cancellation).  A row of the
  decay factor ``exp(-a |C[j] - C[i]|)`` costs one ``exp`` per block of ``_BLOCK`` times
  when ``C`` is monotonic (``|C[j] - C[i]|`` splits at the block anchor), and phase
  differences come from the angle addition formulas on per-time ``sin``/``cos`` tables
  (``sinc`` of a small phase from its Taylor series, where the subtraction would lose
  relative accuracy); the inner loops then vectorize.  Contrast, offset and chi2 come
  from weighted sums of ``u = s - s0`` and ``r = d - a0 - c0 u`` about a reference
  ``(a0, c0, s0)`` near the solution, taken from a first pass over every
  ``_SUBSAMPLE``-th row: the normal equations and ``chi2 = sum W (r - da - dc u)**2``
  then do not cancel (plain sums of ``W d**2`` and ``W s**2`` would lose 4+ digits).

Kernels are single-threaded: MPI ranks are the parallelism.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

HOMODYNE_N_PARAMS = 7
HETERODYNE_N_PARAMS = 14

_BLOCK = 64             # decay rows: one exp per block of this many time points
_SUBSAMPLE = 8          # every 8th row gives the reference contrast/offset of the fused kernels
_TINY = 1e-280          # decay factors below this are 0 (avoids slow denormal arithmetic)
_RATIO_MIN = 1e-200     # table ratios P[j] / P[i] only while P[i] is far from underflow
_TAYLOR_X2 = 0.0625     # |x| < 0.25: sinc from its Taylor series (truncation < 4e-18)
_DEGENERATE = 1e-12     # relative determinant below which an angle's decay is flat

_FAST = {"reassoc", "contract"}  # lets LLVM vectorize the reductions; no nnan/ninf


# --------------------------------------------------------------------------- literal kernels
@njit(cache=True, error_model="numpy")
def _cumulative_trapezoid(coef, expo, offset, dt, n):
    """C[0] = 0, C[k] = C[k-1] + dt (r(t_{k-1}) + r(t_k)) / 2, r(t) = coef t**expo + offset."""
    c = np.zeros(n)
    prev = coef * dt ** expo + offset
    for k in range(1, n):
        cur = coef * (dt * (k + 1)) ** expo + offset
        c[k] = c[k - 1] + dt * (prev + cur) / 2.0
        prev = cur
    return c


@njit(cache=True, error_model="numpy")
def _sinc(x):
    if x == 0.0:
        return 1.0
    return math.sin(x) / x


@njit(cache=True, error_model="numpy")
def _homodyne_decay(p, phi, q, h, dt, n):
    cd = _cumulative_trapezoid(p[0], p[1], p[2], dt, n)
    cg = _cumulative_trapezoid(p[3], p[4], p[5], dt, n)
    n_phi = phi.shape[0]
    out = np.empty((n_phi, n, n))
    for a in range(n_phi):
        k = q * h / (2.0 * math.pi) * math.cos(math.radians(p[6] - phi[a]))
        for i in range(n):
            for j in range(i, n):
                g1 = math.exp(-q * q / 2.0 * abs(cd[j] - cd[i]))
                sc = _sinc(k * abs(cg[j] - cg[i]))
                v = g1 * g1 * sc * sc
                out[a, i, j] = v
                out[a, j, i] = v
    return out


@njit(cache=True, error_model="numpy")
def _sample_fraction(f0, f1, f2, f3, dt, n):
    xs = np.empty(n)
    for k in range(n):
        y = f0 * math.exp(f1 * (dt * (k + 1) - f2)) + f3
        if y < 0.0:  # written out so that nan stays nan, like np.clip
            y = 0.0
        elif y > 1.0:
            y = 1.0
        xs[k] = y
    return xs


@njit(cache=True, error_model="numpy")
def _heterodyne_decay(p, phi, q, dt, n):
    cr = _cumulative_trapezoid(p[0], p[1], p[2], dt, n)
    cs = _cumulative_trapezoid(p[3], p[4], p[5], dt, n)
    cv = _cumulative_trapezoid(p[6], p[7], p[8], dt, n)
    xs = _sample_fraction(p[9], p[10], p[11], p[12], dt, n)
    n_phi = phi.shape[0]
    out = np.empty((n_phi, n, n))
    for a in range(n_phi):
        k = q * math.cos(math.radians(p[13] - phi[a]))
        for i in range(n):
            for j in range(i, n):
                g1r = math.exp(-q * q / 2.0 * abs(cr[j] - cr[i]))
                g1s = math.exp(-q * q / 2.0 * abs(cs[j] - cs[i]))
                xri, xrj, xsi, xsj = 1.0 - xs[i], 1.0 - xs[j], xs[i], xs[j]
                num = ((xri * xrj) ** 2 * g1r ** 2 + (xsi * xsj) ** 2 * g1s ** 2
                       + 2.0 * xri * xrj * xsi * xsj * g1r * g1s
                       * math.cos(k * abs(cv[j] - cv[i])))
                v = num / ((xri ** 2 + xsi ** 2) * (xrj ** 2 + xsj ** 2))
                out[a, i, j] = v
                out[a, j, i] = v
    return out


@njit(cache=True, error_model="numpy")
def _solve_angle(s1, su, suu, sr, sru, srr, a0, c0, s0):
    """Closed-form weighted least squares d ~ offset + contrast * s for one angle.

    Input: sums of W, Wu, Wuu, Wr, Wru, Wrr with u = s - s0 and r = d - a0 - c0 u for a
    reference (a0, c0, s0) near the solution, which keeps the 2x2 normal equations and the
    chi2 free of cancellation.  Returns (contrast, offset, chi2).
    """
    det = s1 * suu - su * su  # = s1**2 * weighted variance of s, whatever s0
    mean_s = s0 + su / s1
    if det > _DEGENERATE * (det + s1 * s1 * mean_s * mean_s):
        dc = (s1 * sru - su * sr) / det
        da = (sr - dc * su) / s1
    else:  # flat decay (or nan sums): the contrast is not identifiable; fit the weighted mean
        dc = -c0
        da = (sr + c0 * su) / s1
    contrast = c0 + dc
    chi2 = srr - 2.0 * (da * sr + dc * sru) + da * da * s1 + 2.0 * da * dc * su + dc * dc * suu
    return contrast, a0 + da - contrast * s0, max(chi2, 0.0)


@njit(cache=True, error_model="numpy")
def _contrast_offset(decay, c2, w):
    n_phi = decay.shape[0]
    contrast = np.empty(n_phi)
    offset = np.empty(n_phi)
    for a in range(n_phi):
        s1, ss, sd = 0.0, 0.0, 0.0
        for i in range(decay.shape[1]):
            for j in range(decay.shape[2]):
                s1 += w[a, i, j]
                ss += w[a, i, j] * decay[a, i, j]
                sd += w[a, i, j] * c2[a, i, j]
        s0, d0 = ss / s1, sd / s1  # weighted means: the reference of _solve_angle
        su = suu = sr = sru = 0.0
        for i in range(decay.shape[1]):
            for j in range(decay.shape[2]):
                wt, u, r = w[a, i, j], decay[a, i, j] - s0, c2[a, i, j] - d0
                su += wt * u
                suu += wt * u * u
                sr += wt * r
                sru += wt * r * u
        contrast[a], offset[a], _ = _solve_angle(s1, su, suu, sr, sru, 0.0, d0, 0.0, s0)
    return contrast, offset


# --------------------------------------------------------------------------- fused kernels
@njit(cache=True, error_model="numpy")
def _fold(c2, w):
    n_phi, n = c2.shape[0], c2.shape[1]
    d_f = np.empty((n_phi, n * (n + 1) // 2))
    w_f = np.empty_like(d_f)
    const = 0.0
    for a in range(n_phi):
        idx = 0
        for i in range(n):
            d_f[a, idx] = c2[a, i, i]
            w_f[a, idx] = w[a, i, i]
            idx += 1
            for j in range(i + 1, n):
                w1, w2, d1, d2 = w[a, i, j], w[a, j, i], c2[a, i, j], c2[a, j, i]
                wt = w1 + w2
                d_f[a, idx] = (w1 * d1 + w2 * d2) / wt
                w_f[a, idx] = wt
                const += w1 * w2 * (d1 - d2) ** 2 / wt
                idx += 1
    return d_f, w_f, const


@njit(cache=True, error_model="numpy")
def _decay_table(c, rate):
    """P[j] = exp(-rate |C[j] - C[b]|) with b = j - j % _BLOCK its block anchor; C monotonic?"""
    n = c.shape[0]
    table = np.empty(n)
    up = down = True
    for j in range(n):
        if j > 0:
            up = up and c[j] >= c[j - 1]
            down = down and c[j] <= c[j - 1]
        table[j] = math.exp(-rate * abs(c[j] - c[j - j % _BLOCK]))
    return table, up or down


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _decay_row(i, c, rate, table, monotonic, out):
    """out[j - i] = exp(-rate |C[j] - C[i]|) for j >= i.

    For monotonic C and a later block b: |C[j] - C[i]| = |C[b] - C[i]| + |C[j] - C[b]|, so the
    row is one exp per block times the table (exact up to rounding, nothing accumulates);
    within the block of i it is the table ratio P[j] / P[i].
    """
    n = c.shape[0]
    if not monotonic:
        for j in range(i, n):
            out[j - i] = math.exp(-rate * abs(c[j] - c[i]))
        return
    first = min(n, i - i % _BLOCK + _BLOCK)
    if table[i] > _RATIO_MIN:  # same block: P[j] / P[i]
        inv = 1.0 / table[i]
        for j in range(i, first):
            out[j - i] = table[j] * inv
        out[0] = 1.0
    else:
        for j in range(i, first):
            out[j - i] = math.exp(-rate * abs(c[j] - c[i]))
    for b in range(first, n, _BLOCK):
        head = math.exp(-rate * abs(c[b] - c[i]))
        if head < _TINY:  # monotonic: the rest of the row is smaller still
            out[b - i:n - i] = 0.0
            return
        for j in range(b, min(n, b + _BLOCK)):
            out[j - i] = head * table[j]


@njit(cache=True, error_model="numpy")
def _phase_tables(k, c):
    """sin and cos of k[a] * c[t]: phase differences follow from the addition formulas."""
    sn = np.empty((k.shape[0], c.shape[0]))
    cs = np.empty_like(sn)
    for a in range(k.shape[0]):
        for t in range(c.shape[0]):
            sn[a, t] = math.sin(k[a] * c[t])
            cs[a, t] = math.cos(k[a] * c[t])
    return sn, cs


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _homodyne_rows(i, g1sq, cg, k, sn, cs, rows):
    """rows[a, j - i] = g1**2 sinc(Phi)**2 for j >= i (g1sq from _decay_row)."""
    m = cg.shape[0] - i
    cgi, cgr = cg[i], cg[i:]
    for a in range(k.shape[0]):
        ka, sni, csi = k[a], sn[a, i], cs[a, i]
        snr, csr, out = sn[a, i:], cs[a, i:], rows[a, :m]
        for j in range(m):
            x = ka * (cgr[j] - cgi)
            x2 = x * x
            sc = 1.0 + x2 * (-1.0 / 6 + x2 * (1.0 / 120 + x2 * (
                -1.0 / 5040 + x2 * (1.0 / 362880 - x2 / 39916800))))
            sin_x = snr[j] * csi - csr[j] * sni  # sin(k cg[j] - k cg[i])
            out[j] = g1sq[j] * (sc * sc if x2 < _TAYLOR_X2 else sin_x * sin_x / x2)


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _heterodyne_rows(i, g1r, g1s, xr, xs, inv_norm, k, sn, cs, rows):
    """rows[a, j - i] = heterodyne bracket / (N(i) N(j)) for j >= i (g1r, g1s from _decay_row)."""
    m = xr.shape[0] - i
    xrr, xsr, nr = xr[i:], xs[i:], inv_norm[i:]
    for a in range(k.shape[0]):
        sni, csi = sn[a, i], cs[a, i]
        snr, csr, out = sn[a, i:], cs[a, i:], rows[a, :m]
        for j in range(m):
            u = xr[i] * xrr[j] * g1r[j]
            v = xs[i] * xsr[j] * g1s[j]
            cos_phi = csr[j] * csi + snr[j] * sni  # cos(k cv[j] - k cv[i])
            out[j] = (u * u + v * v + 2.0 * u * v * cos_phi) * (inv_norm[i] * nr[j])


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _add_sums(i, rows, d_f, w_f, ref, sums):
    """Add row i to the per-angle sums of _solve_angle for the reference ref[a] = (a0, c0, s0)."""
    n = rows.shape[1]
    m = n - i
    start = i * n - i * (i - 1) // 2  # packed upper triangle: row i holds j = i..n-1
    for a in range(rows.shape[0]):
        a0, c0, s0 = ref[a, 0], ref[a, 1], ref[a, 2]
        sr_, dr, wr = rows[a, :m], d_f[a, start:start + m], w_f[a, start:start + m]
        s1 = su = suu = sr = sru = srr = 0.0
        for j in range(m):
            wt, u = wr[j], sr_[j] - s0
            r = dr[j] - a0 - c0 * u
            s1 += wt
            su += wt * u
            suu += wt * u * u
            sr += wt * r
            sru += wt * r * u
            srr += wt * r * r
        sums[a, 0] += s1
        sums[a, 1] += su
        sums[a, 2] += suu
        sums[a, 3] += sr
        sums[a, 4] += sru
        sums[a, 5] += srr


@njit(cache=True, error_model="numpy")
def _set_reference(sums, ref):
    """After the subsample pass (reference 0): its fit becomes the reference (a0, c0, s0)."""
    for a in range(sums.shape[0]):
        s = sums[a]
        contrast, offset, _ = _solve_angle(s[0], s[1], s[2], s[3], s[4], s[5], 0.0, 0.0, 0.0)
        s0 = s[1] / s[0]
        if np.isfinite(contrast) and np.isfinite(offset) and np.isfinite(s0):
            ref[a, 0], ref[a, 1], ref[a, 2] = offset + contrast * s0, contrast, s0
        sums[a, :] = 0.0


@njit(cache=True, error_model="numpy")
def _finish(sums, ref, const):
    """(chi2, contrast, offset) from the full-pass sums; chi2 inf if anything is not finite."""
    n_phi = sums.shape[0]
    contrast = np.empty(n_phi)
    offset = np.empty(n_phi)
    total = const
    for a in range(n_phi):
        s = sums[a]
        contrast[a], offset[a], chi2 = _solve_angle(s[0], s[1], s[2], s[3], s[4], s[5],
                                                    ref[a, 0], ref[a, 1], ref[a, 2])
        total += chi2
    if not np.isfinite(total) or not np.all(np.isfinite(sums)):
        contrast[:] = np.nan
        offset[:] = np.nan
        return np.inf, contrast, offset
    return total, contrast, offset


@njit(cache=True, error_model="numpy")
def _fit_homodyne(p, phi, q, h, dt, n, d_f, w_f, const):
    n_phi = d_f.shape[0]
    cd = _cumulative_trapezoid(p[0], p[1], p[2], dt, n)
    cg = _cumulative_trapezoid(p[3], p[4], p[5], dt, n)
    rate = q * q  # g1**2 = exp(-q**2 J_D)
    table, monotonic = _decay_table(cd, rate)
    k = np.empty(n_phi)
    for a in range(n_phi):
        k[a] = q * h / (2.0 * math.pi) * math.cos(math.radians(p[6] - phi[a]))
    sn, cs = _phase_tables(k, cg)
    g1sq = np.empty(n)
    rows = np.empty((n_phi, n))
    sums = np.zeros((n_phi, 6))
    ref = np.zeros((n_phi, 3))
    for stride in (_SUBSAMPLE, 1):  # a subsample for the reference, then every row
        for i in range(0, n, stride):
            _decay_row(i, cd, rate, table, monotonic, g1sq)
            _homodyne_rows(i, g1sq, cg, k, sn, cs, rows)
            _add_sums(i, rows, d_f, w_f, ref, sums)
        if stride > 1:
            _set_reference(sums, ref)
    return _finish(sums, ref, const)


@njit(cache=True, error_model="numpy")
def _fit_heterodyne(p, phi, q, dt, n, d_f, w_f, const):
    n_phi = d_f.shape[0]
    cr = _cumulative_trapezoid(p[0], p[1], p[2], dt, n)
    csam = _cumulative_trapezoid(p[3], p[4], p[5], dt, n)
    cv = _cumulative_trapezoid(p[6], p[7], p[8], dt, n)
    xs = _sample_fraction(p[9], p[10], p[11], p[12], dt, n)
    xr = np.empty(n)
    inv_norm = np.empty(n)
    for t in range(n):
        xr[t] = 1.0 - xs[t]
        inv_norm[t] = 1.0 / (xr[t] * xr[t] + xs[t] * xs[t])
    rate = q * q / 2.0  # g1 = exp(-q**2/2 J)
    table_r, mono_r = _decay_table(cr, rate)
    table_s, mono_s = _decay_table(csam, rate)
    k = np.empty(n_phi)
    for a in range(n_phi):
        k[a] = q * math.cos(math.radians(p[13] - phi[a]))
    sn, cs = _phase_tables(k, cv)
    g1r = np.empty(n)
    g1s = np.empty(n)
    rows = np.empty((n_phi, n))
    sums = np.zeros((n_phi, 6))
    ref = np.zeros((n_phi, 3))
    for stride in (_SUBSAMPLE, 1):
        for i in range(0, n, stride):
            _decay_row(i, cr, rate, table_r, mono_r, g1r)
            _decay_row(i, csam, rate, table_s, mono_s, g1s)
            _heterodyne_rows(i, g1r, g1s, xr, xs, inv_norm, k, sn, cs, rows)
            _add_sums(i, rows, d_f, w_f, ref, sums)
        if stride > 1:
            _set_reference(sums, ref)
    return _finish(sums, ref, const)


# --------------------------------------------------------------------------- wrappers
def _real_array(a, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def _finite(arr: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be finite (found nan or inf)")
    return arr


def _scalar(value, what: str, *, positive: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v) or (positive and v <= 0.0):
        raise ValueError(f"{what} must be a finite{' positive' if positive else ''} number, got {v}")
    return v


def _params(p, n: int) -> np.ndarray:
    arr = _real_array(p, "params")
    if arr.shape != (n,):
        raise ValueError(f"params must be a vector of {n} values, got shape {arr.shape}")
    return _finite(arr, "params")


def _angles(phi) -> np.ndarray:
    arr = _real_array(phi, "phi")
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise ValueError(f"phi must be a non-empty 1-D array of angles (degrees), got shape {arr.shape}")
    return _finite(arr, "phi")


def _n_times(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n (time points) must be an integer >= 2, got {n!r}")
    return int(n)


def _stack(a, n_phi: int | None, what: str) -> np.ndarray:
    arr = _finite(_real_array(a, what), what)
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2] or arr.shape[1] < 2:
        raise ValueError(f"{what} must have shape (n_phi, n, n) with n >= 2, got {arr.shape}")
    if n_phi is not None and arr.shape[0] != n_phi:
        raise ValueError(f"{what} has {arr.shape[0]} angles, expected {n_phi}")
    return arr


def _weights(sigma, shape: tuple) -> np.ndarray:
    """w = 1/sigma**2 (ones when sigma is None)."""
    if sigma is None:
        return np.ones(shape)
    s = _finite(_real_array(sigma, "sigma"), "sigma")
    if s.shape != shape:
        raise ValueError(f"sigma has shape {s.shape}, expected {shape} like c2")
    if np.any(s <= 0.0):
        raise ValueError("sigma must be > 0 everywhere")
    return 1.0 / (s * s)


def cumulative_integral(coef: float, exponent: float, offset: float, dt: float, n: int) -> np.ndarray:
    """C[k] of DESIGN.md: trapezoid integral of coef*t**exponent + offset at t_k = dt*(k+1)."""
    for v, what in ((coef, "coef"), (exponent, "exponent"), (offset, "offset")):
        _scalar(v, what, positive=False)
    return _cumulative_trapezoid(float(coef), float(exponent), float(offset),
                                 _scalar(dt, "dt"), _n_times(n))


def homodyne_decay(params, phi, *, q: float, h: float, dt: float, n: int) -> np.ndarray:
    """g1**2 * sinc(Phi)**2 per angle, shape (n_phi, n, n) (homodyne c2 with contrast 1, offset 0)."""
    return _homodyne_decay(_params(params, HOMODYNE_N_PARAMS), _angles(phi), _scalar(q, "q"),
                           _scalar(h, "h"), _scalar(dt, "dt"), _n_times(n))


def heterodyne_decay(params, phi, *, q: float, dt: float, n: int) -> np.ndarray:
    """The heterodyne bracket / (N(i) N(j)) per angle, shape (n_phi, n, n) (contrast 1, offset 0)."""
    return _heterodyne_decay(_params(params, HETERODYNE_N_PARAMS), _angles(phi),
                             _scalar(q, "q"), _scalar(dt, "dt"), _n_times(n))


def contrast_offset(decay, c2, sigma=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-angle closed-form weighted least-squares (contrast, offset) of c2 ~ offset + contrast*decay.

    A flat decay (contrast not identifiable) gives contrast 0 and the weighted mean as offset.
    """
    c2 = _stack(c2, None, "c2")
    decay = _stack(decay, c2.shape[0], "decay")
    if decay.shape != c2.shape:
        raise ValueError(f"decay has shape {decay.shape}, c2 has {c2.shape}")
    return _contrast_offset(decay, c2, _weights(sigma, c2.shape))


@dataclass(frozen=True)
class FoldedData:
    """c2 and weights folded onto the upper triangle (see the module docstring); build with fold_data."""

    d: np.ndarray        # (n_phi, n(n+1)/2) weighted mean of c2[i, j] and c2[j, i], rows i <= j
    w: np.ndarray        # (n_phi, n(n+1)/2) summed weights 1/sigma**2
    const: float         # chi2 part that no symmetric model can remove
    n: int

    @property
    def n_phi(self) -> int:
        return self.d.shape[0]


def fold_data(c2, sigma=None) -> FoldedData:
    """Validate c2 (n_phi, n, n) and sigma (like c2, default 1) and fold them for the fused kernels."""
    c2 = _stack(c2, None, "c2")
    d_f, w_f, const = _fold(c2, _weights(sigma, c2.shape))
    return FoldedData(d_f, w_f, float(const), c2.shape[1])


def _check_folded(data: FoldedData, phi: np.ndarray) -> None:
    if not isinstance(data, FoldedData):
        raise ValueError(f"data must be a FoldedData (see fold_data), got {type(data).__name__}")
    if data.n_phi != phi.shape[0]:
        raise ValueError(f"phi has {phi.shape[0]} angles, data has {data.n_phi}")


def fit_homodyne(params, phi, data: FoldedData, *, q: float, h: float, dt: float
                 ) -> tuple[float, np.ndarray, np.ndarray]:
    """Fused homodyne evaluation: (chi2, contrast, offset) without building the model.

    chi2 is inf (contrast/offset nan when the sums are) if the model is not finite.
    """
    phi = _angles(phi)
    _check_folded(data, phi)
    chi2, contrast, offset = _fit_homodyne(_params(params, HOMODYNE_N_PARAMS), phi, _scalar(q, "q"),
                                           _scalar(h, "h"), _scalar(dt, "dt"), data.n, data.d, data.w,
                                           data.const)
    return float(chi2), contrast, offset


def fit_heterodyne(params, phi, data: FoldedData, *, q: float, dt: float
                   ) -> tuple[float, np.ndarray, np.ndarray]:
    """Fused heterodyne evaluation: (chi2, contrast, offset) without building the model."""
    phi = _angles(phi)
    _check_folded(data, phi)
    chi2, contrast, offset = _fit_heterodyne(_params(params, HETERODYNE_N_PARAMS), phi,
                                             _scalar(q, "q"), _scalar(dt, "dt"), data.n, data.d,
                                             data.w, data.const)
    return float(chi2), contrast, offset


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel here on tiny inputs.

    Call it on one rank per node before the others touch the kernels, so that a job start
    compiles once instead of once per rank.
    """
    phi = np.array([0.0, 45.0])
    hom = np.array([1e3, -0.5, 10.0, 1e-4, 0.5, 0.0, 0.0])
    het = np.array([1e3, 0.0, 0.0, 2e3, 0.0, 0.0, 10.0, 0.0, 0.0, 0.3, 0.1, 0.0, 0.2, 0.0])
    decay = homodyne_decay(hom, phi, q=0.01, h=1e6, dt=0.1, n=4)
    heterodyne_decay(het, phi, q=0.01, dt=0.1, n=4)
    contrast_offset(decay, decay)
    data = fold_data(decay)
    fit_homodyne(hom, phi, data, q=0.01, h=1e6, dt=0.1)
    fit_heterodyne(het, phi, data, q=0.01, dt=0.1)
    cumulative_integral(1.0, 0.5, 0.0, 0.1, 4)
