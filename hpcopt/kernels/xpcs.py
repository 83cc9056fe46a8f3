"""Compiled XPCS two-time correlation kernels (``xpcs:homodyne``, ``xpcs:heterodyne``).

The formulas, their derivation and the conventions are in docs/models.md.  Private
``@njit`` array-only kernels behind validating wrappers.  Notation: a *decay* is the c2
model with contrast 1 and offset 0 (homodyne ``g1**2 * sinc(Phi)**2`` with
``Phi = q h cos(phi0 - phi) J_G / 2``, the heterodyne bracket over ``N(i) N(j)``);
``c2 = offset + contrast * decay`` per angle (or one contrast and offset for every angle:
scaling "constant"), contrast and offset the weighted closed-form linear least squares.
Times: row k of c2 is at ``t_k = t0 + dt k`` (``t0 = dt`` unless a window starts later).

Two evaluation paths:

* the literal kernels (``homodyne_decay``, ``heterodyne_decay``) follow the formulas term
  by term and build full ``(n_phi, n, n)`` arrays (model values, residuals, plots);
* the fused kernels (``fit_homodyne``, ``fit_heterodyne``) give chi2 and the contrast and
  offset without building the model: the hot path of fitting.  The model is symmetric,
  so the data are first reduced to one value per pair i < j (:func:`fold_data`) and the
  kernels visit each pair once, in rows of the packed upper triangle.  Two independent
  measurements of a pair fold exactly: ``w1 (d1 - m)**2 + w2 (d2 - m)**2 = W (D - m)**2
  + w1 w2 (d1 - d2)**2 / W`` with ``W = w1 + w2``, ``D = (w1 d1 + w2 d2) / W``.  The
  diagonal (where every decay is exactly 1) is a separate vector with its own weights
  (0: not fitted).  When every pair of an angle has the same weight (no sigma, or a
  constant one) the weights are not stored and not read.  A row of the decay factor
  ``exp(-a |C[j] - C[i]|)`` costs one ``exp`` per block of ``_BLOCK`` times when ``C`` is
  monotonic (``|C[j] - C[i]|`` splits at the block anchor); phase differences come from
  the angle addition formulas on per-time ``sin``/``cos`` tables, and ``1/x**2`` of the
  sinc from one division per pair shared by every angle, computed with the decay row
  (``sinc`` of a phase below 0.05 from its Taylor series, where the subtraction of the
  tables would lose relative accuracy: a prefix of each row, its end tracked from row to
  row); the model value is never stored, the sums take it in the same loop.  Without
  shear (gamma_dot_0 = gamma_dot_offset = 0) the sinc is exactly 1 and is skipped.
  Contrast, offset and chi2 come from weighted sums of ``u = s - s0`` and
  ``r = d - a0 - c0 u`` about a reference ``(a0, c0, s0)`` near the solution, taken from
  a first pass over a few rows (``_REFERENCE_ROWS``; its error enters chi2 only squared):
  the normal equations and ``chi2 = sum W (r - da - dc u)**2`` then do not cancel (plain
  sums of ``W d**2`` and ``W s**2`` would lose 4+ digits).  The loops run over slices that
  start at 0 (no negative-index handling) so that LLVM vectorizes them.

Kernels are single-threaded: MPI ranks are the parallelism.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

HOMODYNE_N_PARAMS = 7
HETERODYNE_N_PARAMS = 14
SCALINGS = ("individual", "constant")

_BLOCK = 64             # decay rows: one exp per block of this many time points
_REFERENCE_ROWS = 4     # rows 0, n/4, n/2, 3n/4 give the reference contrast/offset (fused kernels)
_TINY = 1e-280          # decay factors below this are 0 (avoids slow denormal arithmetic)
_RATIO_MIN = 1e-200     # table ratios P[j] / P[i] only while P[i] is far from underflow
_TAYLOR_X2 = 0.0025     # |x| < 0.05: sinc from its Taylor series (truncation < 1e-30)
_DEGENERATE = 1e-12     # relative determinant below which an angle's decay is flat

_FAST = {"reassoc", "contract"}  # lets LLVM vectorize the reductions; no nnan/ninf


# --------------------------------------------------------------------------- literal kernels
@njit(cache=True, error_model="numpy")
def _cumulative_trapezoid(coef, expo, offset, t0, dt, n):
    """C[0] = 0, C[k] = C[k-1] + dt (r(t_{k-1}) + r(t_k)) / 2, r(t) = coef t**expo + offset,
    t_k = t0 + dt k."""
    c = np.zeros(n)
    prev = coef * t0 ** expo + offset
    for k in range(1, n):
        cur = coef * (t0 + dt * k) ** expo + offset
        c[k] = c[k - 1] + dt * (prev + cur) / 2.0
        prev = cur
    return c


@njit(cache=True, error_model="numpy")
def _sinc(x):
    if x == 0.0:
        return 1.0
    return math.sin(x) / x


@njit(cache=True, error_model="numpy")
def _homodyne_decay(p, phi, q, h, t0, dt, n):
    cd = _cumulative_trapezoid(p[0], p[1], p[2], t0, dt, n)
    cg = _cumulative_trapezoid(p[3], p[4], p[5], t0, dt, n)
    n_phi = phi.shape[0]
    out = np.empty((n_phi, n, n))
    for a in range(n_phi):
        k = q * h / 2.0 * math.cos(math.radians(p[6] - phi[a]))  # gap average: Phi = k J_G
        for i in range(n):
            for j in range(i, n):
                g1 = math.exp(-q * q / 2.0 * abs(cd[j] - cd[i]))
                sc = _sinc(k * abs(cg[j] - cg[i]))
                v = g1 * g1 * sc * sc
                out[a, i, j] = v
                out[a, j, i] = v
    return out


@njit(cache=True, error_model="numpy")
def _sample_fraction(f0, f1, f2, f3, t0, dt, n):
    xs = np.empty(n)
    for k in range(n):
        y = f0 * math.exp(f1 * (t0 + dt * k - f2)) + f3
        if y < 0.0:  # written out so that nan stays nan, like np.clip
            y = 0.0
        elif y > 1.0:
            y = 1.0
        xs[k] = y
    return xs


@njit(cache=True, error_model="numpy")
def _heterodyne_decay(p, phi, q, t0, dt, n):
    cr = _cumulative_trapezoid(p[0], p[1], p[2], t0, dt, n)
    cs = _cumulative_trapezoid(p[3], p[4], p[5], t0, dt, n)
    cv = _cumulative_trapezoid(p[6], p[7], p[8], t0, dt, n)
    xs = _sample_fraction(p[9], p[10], p[11], p[12], t0, dt, n)
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


# --------------------------------------------------------------------------- pair data
@njit(cache=True, error_model="numpy")
def _fold(c2, w, both, fit_diagonal):
    """Pairs i < j (packed by rows), the diagonal and the constant chi2 part (module docstring)."""
    n_phi, n = c2.shape[0], c2.shape[1]
    d_f = np.empty((n_phi, n * (n - 1) // 2))
    w_f = np.empty_like(d_f)
    dd = np.empty((n_phi, n))
    dw = np.zeros((n_phi, n))
    const = 0.0
    for a in range(n_phi):
        idx = 0
        for i in range(n):
            dd[a, i] = c2[a, i, i]
            if fit_diagonal:
                dw[a, i] = w[a, i, i]
            for j in range(i + 1, n):
                if both:
                    w1, w2, d1, d2 = w[a, i, j], w[a, j, i], c2[a, i, j], c2[a, j, i]
                    wt = w1 + w2
                    d_f[a, idx] = (w1 * d1 + w2 * d2) / wt
                    w_f[a, idx] = wt
                    const += w1 * w2 * (d1 - d2) ** 2 / wt
                else:  # one measurement per pair: the upper triangle
                    d_f[a, idx] = c2[a, i, j]
                    w_f[a, idx] = w[a, i, j]
                idx += 1
    return d_f, w_f, dd, dw, const


# --------------------------------------------------------------------------- fused kernels
@njit(cache=True, error_model="numpy")
def _solve_angle(s1, su, suu, sr, sru, srr, a0, c0, s0):
    """Closed-form weighted least squares d ~ offset + contrast * s.

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
def _decay_row(i, c, rate, table, monotonic, out, cg, gi):
    """out[j - i] = exp(-rate |C[j] - C[i]|) for j >= i; with cg (shear), also
    gi[j - i] = out[j - i] / (cg[j] - cg[i])**2 in the same loops (inf at j = i).

    For monotonic C and a later block b: |C[j] - C[i]| = |C[b] - C[i]| + |C[j] - C[b]|, so the
    row is one exp per block times the table (exact up to rounding, nothing accumulates);
    within the block of i it is the table ratio P[j] / P[i].  The loops run over slices
    from 0: no negative-index handling, so they vectorize.
    """
    n = c.shape[0]
    ci = c[i]
    shear = cg.shape[0] > 0
    cgi = cg[i] if shear else 0.0
    if not monotonic:
        cr, o = c[i:], out[:n - i]
        for j in range(n - i):
            o[j] = math.exp(-rate * abs(cr[j] - ci))
        if shear:
            _divide(o, cg[i:], cgi, gi[:n - i])
        return
    first = min(n, i - i % _BLOCK + _BLOCK)
    cr, tr, o = c[i:first], table[i:first], out[:first - i]
    if table[i] > _RATIO_MIN:  # same block: P[j] / P[i]
        inv = 1.0 / table[i]
        for j in range(first - i):
            o[j] = tr[j] * inv
        o[0] = 1.0
    else:
        for j in range(first - i):
            o[j] = math.exp(-rate * abs(cr[j] - ci))
    if shear:
        _divide(o, cg[i:first], cgi, gi[:first - i])
    for b in range(first, n, _BLOCK):
        head = math.exp(-rate * abs(c[b] - ci))
        if head < _TINY:  # monotonic: the rest of the row is smaller still
            out[b - i:n - i] = 0.0
            gi[b - i:n - i] = 0.0
            return
        end = min(n, b + _BLOCK)
        tb, ob = table[b:end], out[b - i:end - i]
        if shear:
            cb, gb = cg[b:end], gi[b - i:end - i]
            for j in range(end - b):
                g = head * tb[j]
                dc = cb[j] - cgi
                ob[j] = g
                gb[j] = g / (dc * dc)
        else:
            for j in range(end - b):
                ob[j] = head * tb[j]


@njit(inline="always", fastmath=_FAST)
def _divide(g1, cg, cgi, gi):
    for j in range(g1.shape[0]):
        dc = cg[j] - cgi
        gi[j] = g1[j] / (dc * dc)


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


@njit(inline="always", fastmath=_FAST)
def _acc(t, s, d, a0, c0, s0):
    """t + the terms of one pair of weight 1 (u = s - s0, r = d - a0 - c0 u): (-, u, uu, r, ru, rr)
    (the count t[0] is the row length, added once by the caller)."""
    u = s - s0
    r = d - a0 - c0 * u
    return (t[0], t[1] + u, t[2] + u * u, t[3] + r, t[4] + r * u, t[5] + r * r)


@njit(inline="always", fastmath=_FAST)
def _acc_w(t, s, d, wt, a0, c0, s0):
    """t + the terms of one pair of weight wt: (w, wu, wuu, wr, wru, wrr)."""
    u = s - s0
    r = d - a0 - c0 * u
    wu = wt * u
    wr = wt * r
    return (t[0] + wt, t[1] + wu, t[2] + wu * u, t[3] + wr, t[4] + wr * u, t[5] + wr * r)


_ZERO6 = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@njit(inline="always")
def _scaled(t, count, w0):
    """Uniform weights: the sums of weight-1 pairs times w0, with the count of the row."""
    return (w0 * count, w0 * t[1], w0 * t[2], w0 * t[3], w0 * t[4], w0 * t[5])


@njit(inline="always", fastmath=_FAST)
def _row_sums(s, d, w, uniform, w0, a0, c0, s0):
    """The six sums of _solve_angle over one row of pairs with model values s, data d,
    weights w (uniform: w is not read, every pair weighs w0)."""
    t = _ZERO6
    if uniform:
        for j in range(s.shape[0]):
            t = _acc(t, s[j], d[j], a0, c0, s0)
        return _scaled(t, s.shape[0], w0)
    for j in range(s.shape[0]):
        t = _acc_w(t, s[j], d[j], w[j], a0, c0, s0)
    return t


@njit(inline="always", fastmath=_FAST)
def _sinc_row_sums(sn, cs, gi, sni, csi, d, w, uniform, w0, a0, c0, s0):
    """_row_sums of the shear model s = (sn cs_i - cs sn_i)**2 * gi, fused: the hot loop.

    With sni, csi scaled by 1/|k| and gi = g1**2 / (cg[j] - cg[i])**2 this is
    g1**2 sin(x)**2 / x**2 (module docstring); s is never stored.
    """
    t = _ZERO6
    if uniform:
        for j in range(d.shape[0]):
            x = sn[j] * csi - cs[j] * sni
            t = _acc(t, x * x * gi[j], d[j], a0, c0, s0)
        return _scaled(t, d.shape[0], w0)
    for j in range(d.shape[0]):
        x = sn[j] * csi - cs[j] * sni
        t = _acc_w(t, x * x * gi[j], d[j], w[j], a0, c0, s0)
    return t


@njit(inline="always", fastmath=_FAST)
def _taylor_sinc2(x):
    """sinc(x)**2 from the Taylor series of sinc, for small |x| (_TAYLOR_X2)."""
    x2 = x * x
    sc = 1.0 + x2 * (-1.0 / 6 + x2 * (1.0 / 120 + x2 * (
        -1.0 / 5040 + x2 * (1.0 / 362880 - x2 / 39916800))))
    return sc * sc


@njit(inline="always", fastmath=_FAST)
def _taylor_row_sums(g1, cg, cgi, ka, d, w, uniform, w0, a0, c0, s0):
    """_row_sums of s = g1 sinc(ka (cg - cgi))**2 with the Taylor series (small phases), fused."""
    t = _ZERO6
    if uniform:
        for j in range(d.shape[0]):
            t = _acc(t, g1[j] * _taylor_sinc2(ka * (cg[j] - cgi)), d[j], a0, c0, s0)
        return _scaled(t, d.shape[0], w0)
    for j in range(d.shape[0]):
        t = _acc_w(t, g1[j] * _taylor_sinc2(ka * (cg[j] - cgi)), d[j], w[j], a0, c0, s0)
    return t


@njit(inline="always")
def _add(sums, a, t):
    for c in range(6):
        sums[a, c] += t[c]


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _homodyne_rows(first, step, n, cd, rate, table, monotonic, cg, shear, cg_monotonic, k, sn, cs,
                   d_f, w_f, w0, ref, sums, g1sq, gi, buf):
    """Add the pairs of rows first, first + step, ... < n - 1 to the sums (homodyne model).

    Without shear the model row is g1**2, the same for every angle.  With shear, the phases
    k |cg[j] - cg[i]| below 0.05 take the Taylor series of the sinc (a prefix of the row when
    cg is monotonic, its end tracked from row to row), the rest the fused sin**2 / x**2 loop.
    """
    uniform = w_f.shape[1] == 0
    up = cg[n - 1] >= cg[0]
    taylor_end = np.zeros(d_f.shape[0], np.int64)   # per angle: where the last Taylor prefix ended
    for i in range(first, n - 1, step):
        m = n - 1 - i
        start = i * (2 * n - i - 1) // 2  # packed pairs: row i holds j = i+1 .. n-1
        # g1**2 of the row and gi = g1**2 / (cg[j] - cg[i])**2 (inf where equal: the Taylor
        # series is used there), both at index j - i
        _decay_row(i, cd, rate, table, monotonic, g1sq, cg if shear else cg[:0], gi)
        g1r = g1sq[1:m + 1]
        gir = gi[1:m + 1]
        cgi = cg[i] if shear else 0.0
        cgr = cg[i + 1:]
        for a in range(d_f.shape[0]):
            a0, c0, s0 = ref[a, 0], ref[a, 1], ref[a, 2]
            dr = d_f[a, start:start + m]
            wr = w_f[a, start:start + m] if not uniform else dr  # dr: a placeholder, not read
            if not shear:
                _add(sums, a, _row_sums(g1r, dr, wr, uniform, w0[a], a0, c0, s0))
                continue
            ka = k[a]
            limit = math.sqrt(_TAYLOR_X2) / abs(ka) if ka != 0.0 else np.inf
            if cg_monotonic:  # Taylor for |cg[j] - cg[i]| < limit: a prefix of the row
                # its end only moves forward from one row to the next (cg monotonic)
                jend = max(taylor_end[a], i + 1)
                while jend < n and (cg[jend] - cgi if up else cgi - cg[jend]) < limit:
                    jend += 1
                taylor_end[a] = jend
                jt = jend - i - 1
                _add(sums, a, _taylor_row_sums(g1r[:jt], cgr[:jt], cgi, ka, dr[:jt], wr[:jt],
                                               uniform, w0[a], a0, c0, s0))
                if jt < m:
                    scale = 1.0 / abs(ka)
                    _add(sums, a, _sinc_row_sums(sn[a, i + 1 + jt:], cs[a, i + 1 + jt:], gir[jt:],
                                                 sn[a, i] * scale, cs[a, i] * scale, dr[jt:],
                                                 wr[jt:], uniform, w0[a], a0, c0, s0))
            else:  # cg not monotonic: choose per pair
                kinv2 = 1.0 / (ka * ka) if ka != 0.0 else 0.0
                sni, csi = sn[a, i], cs[a, i]
                for j in range(m):
                    x = ka * (cgr[j] - cgi)
                    if x * x < _TAYLOR_X2:
                        buf[j] = g1r[j] * _taylor_sinc2(x)
                    else:
                        sx = sn[a, i + 1 + j] * csi - cs[a, i + 1 + j] * sni
                        buf[j] = sx * sx * gir[j] * kinv2
                _add(sums, a, _row_sums(buf[:m], dr, wr, uniform, w0[a], a0, c0, s0))


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _heterodyne_rows(first, step, n, cr, csam, rate, table_r, mono_r, table_s, mono_s, xr, xs,
                     inv_norm, k, sn, cs, d_f, w_f, w0, ref, sums, g1r, g1s, buf):
    """Add the pairs of rows first, first + step, ... < n - 1 to the sums (heterodyne model)."""
    uniform = w_f.shape[1] == 0
    for i in range(first, n - 1, step):
        m = n - 1 - i
        start = i * (2 * n - i - 1) // 2
        _decay_row(i, cr, rate, table_r, mono_r, g1r, cr[:0], g1r)
        _decay_row(i, csam, rate, table_s, mono_s, g1s, csam[:0], g1s)
        xrr, xsr, nr = xr[i + 1:], xs[i + 1:], inv_norm[i + 1:]
        gr, gs = g1r[1:m + 1], g1s[1:m + 1]
        for a in range(d_f.shape[0]):
            sni, csi = sn[a, i], cs[a, i]
            snr, csr = sn[a, i + 1:], cs[a, i + 1:]
            for j in range(m):
                u = xr[i] * xrr[j] * gr[j]
                v = xs[i] * xsr[j] * gs[j]
                cos_phi = csr[j] * csi + snr[j] * sni  # cos(k cv[j] - k cv[i])
                buf[j] = (u * u + v * v + 2.0 * u * v * cos_phi) * (inv_norm[i] * nr[j])
            dr = d_f[a, start:start + m]
            wr = w_f[a, start:start + m] if not uniform else dr  # dr: a placeholder, not read
            _add(sums, a, _row_sums(buf[:m], dr, wr, uniform, w0[a], ref[a, 0], ref[a, 1],
                                    ref[a, 2]))


@njit(cache=True, error_model="numpy")
def _add_diagonal(dd, dw, ref, sums):
    """The fitted diagonal (weights dw > 0), where every decay is exactly 1."""
    for a in range(dd.shape[0]):
        a0, c0, s0 = ref[a, 0], ref[a, 1], ref[a, 2]
        u = 1.0 - s0
        for i in range(dd.shape[1]):
            wt = dw[a, i]
            if wt == 0.0:
                continue
            r = dd[a, i] - a0 - c0 * u
            sums[a, 0] += wt
            sums[a, 1] += wt * u
            sums[a, 2] += wt * u * u
            sums[a, 3] += wt * r
            sums[a, 4] += wt * r * u
            sums[a, 5] += wt * r * r


@njit(cache=True, error_model="numpy")
def _pooled(sums):
    """Sums of every angle added (scaling "constant": every angle has the same reference)."""
    total = np.zeros((1, 6))
    for a in range(sums.shape[0]):
        total[0, :] += sums[a, :]
    return total


@njit(cache=True, error_model="numpy")
def _set_reference(sums, ref, constant):
    """After the reference pass (reference 0): its fit becomes the reference (a0, c0, s0)."""
    use = _pooled(sums) if constant else sums
    for g in range(use.shape[0]):
        s = use[g]
        contrast, offset, _ = _solve_angle(s[0], s[1], s[2], s[3], s[4], s[5], 0.0, 0.0, 0.0)
        s0 = s[1] / s[0]
        if np.isfinite(contrast) and np.isfinite(offset) and np.isfinite(s0):
            lo, hi = (0, sums.shape[0]) if constant else (g, g + 1)
            for a in range(lo, hi):
                ref[a, 0], ref[a, 1], ref[a, 2] = offset + contrast * s0, contrast, s0
    sums[:, :] = 0.0


@njit(cache=True, error_model="numpy")
def _finish(sums, ref, const, constant):
    """(chi2, contrast, offset) from the full-pass sums; chi2 inf if anything is not finite."""
    n_phi = sums.shape[0]
    contrast = np.empty(n_phi)
    offset = np.empty(n_phi)
    total = const
    if constant:
        s = _pooled(sums)[0]
        c, o, chi2 = _solve_angle(s[0], s[1], s[2], s[3], s[4], s[5], ref[0, 0], ref[0, 1], ref[0, 2])
        contrast[:] = c
        offset[:] = o
        total += chi2
    else:
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
def _fit_homodyne(p, phi, q, h, t0, dt, n, d_f, w_f, w0, dd, dw, const, constant):
    n_phi = d_f.shape[0]
    cd = _cumulative_trapezoid(p[0], p[1], p[2], t0, dt, n)
    rate = q * q  # g1**2 = exp(-q**2 J_D)
    table, monotonic = _decay_table(cd, rate)
    shear = p[3] != 0.0 or p[5] != 0.0  # without shear rates sinc(Phi) is exactly 1
    cg = _cumulative_trapezoid(p[3], p[4], p[5], t0, dt, n) if shear else np.zeros(n)
    cg_monotonic = True
    for t in range(1, n):
        if (cg[t] - cg[t - 1]) * (cg[n - 1] - cg[0]) < 0.0:
            cg_monotonic = False
    k = np.empty(n_phi)
    for a in range(n_phi):
        k[a] = q * h / 2.0 * math.cos(math.radians(p[6] - phi[a]))
    sn, cs = _phase_tables(k, cg) if shear else (np.empty((n_phi, 0)), np.empty((n_phi, 0)))
    g1sq = np.empty(n)
    gi = np.empty(n)
    buf = np.empty(n)
    sums = np.zeros((n_phi, 6))
    ref = np.zeros((n_phi, 3))
    for reference in (True, False):  # a few rows for the reference, then all rows
        step = max(1, n // _REFERENCE_ROWS) if reference else 1
        _homodyne_rows(0, step, n, cd, rate, table, monotonic, cg, shear, cg_monotonic, k, sn, cs,
                       d_f, w_f, w0, ref, sums, g1sq, gi, buf)
        _add_diagonal(dd, dw, ref, sums)
        if reference:
            _set_reference(sums, ref, constant)
    return _finish(sums, ref, const, constant)


@njit(cache=True, error_model="numpy")
def _fit_heterodyne(p, phi, q, t0, dt, n, d_f, w_f, w0, dd, dw, const, constant):
    n_phi = d_f.shape[0]
    cr = _cumulative_trapezoid(p[0], p[1], p[2], t0, dt, n)
    csam = _cumulative_trapezoid(p[3], p[4], p[5], t0, dt, n)
    cv = _cumulative_trapezoid(p[6], p[7], p[8], t0, dt, n)
    xs = _sample_fraction(p[9], p[10], p[11], p[12], t0, dt, n)
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
    buf = np.empty(n)
    sums = np.zeros((n_phi, 6))
    ref = np.zeros((n_phi, 3))
    for reference in (True, False):
        step = max(1, n // _REFERENCE_ROWS) if reference else 1
        _heterodyne_rows(0, step, n, cr, csam, rate, table_r, mono_r, table_s, mono_s, xr, xs,
                         inv_norm, k, sn, cs, d_f, w_f, w0, ref, sums, g1r, g1s, buf)
        _add_diagonal(dd, dw, ref, sums)
        if reference:
            _set_reference(sums, ref, constant)
    return _finish(sums, ref, const, constant)


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


def _times(dt, t0) -> tuple[float, float]:
    """(t0, dt) of the time grid t_k = t0 + dt k; t0 defaults to dt (t_k = dt (k + 1))."""
    dt = _scalar(dt, "dt")
    return (dt if t0 is None else _scalar(t0, "t0")), dt


def _constant(scaling: str) -> bool:
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    return scaling == "constant"


def _stack(a, n_phi: int | None, what: str) -> np.ndarray:
    arr = _finite(_real_array(a, what), what)
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2] or arr.shape[1] < 2:
        raise ValueError(f"{what} must have shape (n_phi, n, n) with n >= 2, got {arr.shape}")
    if n_phi is not None and arr.shape[0] != n_phi:
        raise ValueError(f"{what} has {arr.shape[0]} angles, expected {n_phi}")
    return arr


def weights(sigma, shape: tuple) -> np.ndarray:
    """w = 1/sigma**2 (ones when sigma is None), validated against the shape of c2."""
    if sigma is None:
        return np.ones(shape)
    s = _finite(_real_array(sigma, "sigma"), "sigma")
    if s.shape != shape:
        raise ValueError(f"sigma has shape {s.shape}, expected {shape} like c2")
    if np.any(s <= 0.0):
        raise ValueError("sigma must be > 0 everywhere")
    return 1.0 / (s * s)


def cumulative_integral(coef: float, exponent: float, offset: float, dt: float, n: int,
                        t0: float | None = None) -> np.ndarray:
    """C[k]: trapezoid integral of coef*t**exponent + offset from t_0 to t_k = t0 + dt k."""
    for v, what in ((coef, "coef"), (exponent, "exponent"), (offset, "offset")):
        _scalar(v, what, positive=False)
    t0, dt = _times(dt, t0)
    return _cumulative_trapezoid(float(coef), float(exponent), float(offset), t0, dt, _n_times(n))


def homodyne_decay(params, phi, *, q: float, h: float, dt: float, n: int,
                   t0: float | None = None) -> np.ndarray:
    """g1**2 * sinc(Phi)**2 per angle, shape (n_phi, n, n) (homodyne c2 with contrast 1, offset 0)."""
    t0, dt = _times(dt, t0)
    return _homodyne_decay(_params(params, HOMODYNE_N_PARAMS), _angles(phi), _scalar(q, "q"),
                           _scalar(h, "h"), t0, dt, _n_times(n))


def heterodyne_decay(params, phi, *, q: float, dt: float, n: int,
                     t0: float | None = None) -> np.ndarray:
    """The heterodyne bracket / (N(i) N(j)) per angle, shape (n_phi, n, n) (contrast 1, offset 0)."""
    t0, dt = _times(dt, t0)
    return _heterodyne_decay(_params(params, HETERODYNE_N_PARAMS), _angles(phi),
                             _scalar(q, "q"), t0, dt, _n_times(n))


@dataclass(frozen=True)
class FoldedData:
    """c2 and weights as one value per pair i < j plus the diagonal; build with fold_data."""

    d: np.ndarray        # (n_phi, n(n-1)/2) pairs i < j, packed by rows i
    w: np.ndarray        # like d, or (n_phi, 0): every pair of angle a has the weight w0[a]
    w0: np.ndarray       # (n_phi,)
    diag: np.ndarray     # (n_phi, n) c2[a, i, i]
    diag_w: np.ndarray   # (n_phi, n) its weights, 0 where the diagonal is not fitted
    const: float         # chi2 part that no symmetric model can remove
    n: int

    @property
    def n_phi(self) -> int:
        return self.d.shape[0]


def fold_data(c2, sigma=None, *, pairs: str = "both", diagonal: bool = True) -> FoldedData:
    """Validate c2 (n_phi, n, n) and sigma (like c2, default 1) and fold them for the fused kernels.

    pairs: "both" (c2[i, j] and c2[j, i] are two measurements of the pair) or "once" (one
    measurement per pair, in the upper triangle: a symmetric c2).  diagonal: fit the
    diagonal (True) or leave it out of chi2.
    """
    if pairs not in ("both", "once"):
        raise ValueError(f"pairs must be 'both' or 'once', got {pairs!r}")
    c2 = _stack(c2, None, "c2")
    d_f, w_f, dd, dw, const = _fold(c2, weights(sigma, c2.shape), pairs == "both", bool(diagonal))
    w0 = w_f[:, 0].copy()
    if np.all(w_f == w0[:, None]):
        w_f = np.empty((c2.shape[0], 0))
    return FoldedData(d_f, w_f, w0, dd, dw, float(const), c2.shape[1])


def _check_folded(data: FoldedData, phi: np.ndarray) -> None:
    if not isinstance(data, FoldedData):
        raise ValueError(f"data must be a FoldedData (see fold_data), got {type(data).__name__}")
    if data.n_phi != phi.shape[0]:
        raise ValueError(f"phi has {phi.shape[0]} angles, data has {data.n_phi}")


def fit_homodyne(params, phi, data: FoldedData, *, q: float, h: float, dt: float,
                 t0: float | None = None, scaling: str = "individual"
                 ) -> tuple[float, np.ndarray, np.ndarray]:
    """Fused homodyne evaluation: (chi2, contrast, offset) without building the model.

    chi2 is inf (contrast/offset nan when the sums are) if the model is not finite.
    """
    phi = _angles(phi)
    _check_folded(data, phi)
    t0, dt = _times(dt, t0)
    chi2, contrast, offset = _fit_homodyne(_params(params, HOMODYNE_N_PARAMS), phi, _scalar(q, "q"),
                                           _scalar(h, "h"), t0, dt, data.n, data.d, data.w,
                                           data.w0, data.diag, data.diag_w, data.const,
                                           _constant(scaling))
    return float(chi2), contrast, offset


def fit_heterodyne(params, phi, data: FoldedData, *, q: float, dt: float,
                   t0: float | None = None, scaling: str = "individual"
                   ) -> tuple[float, np.ndarray, np.ndarray]:
    """Fused heterodyne evaluation: (chi2, contrast, offset) without building the model."""
    phi = _angles(phi)
    _check_folded(data, phi)
    t0, dt = _times(dt, t0)
    chi2, contrast, offset = _fit_heterodyne(_params(params, HETERODYNE_N_PARAMS), phi,
                                             _scalar(q, "q"), t0, dt, data.n, data.d, data.w,
                                             data.w0, data.diag, data.diag_w, data.const,
                                             _constant(scaling))
    return float(chi2), contrast, offset


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel here on tiny inputs.

    Call it on one rank per node before the others touch the kernels, so that a job start
    compiles once instead of once per rank.
    """
    phi = np.array([0.0, 45.0])
    hom = np.array([1e3, -0.5, 10.0, 1e-4, 0.5, 0.0, 0.0])
    static = np.array([1e3, -0.5, 10.0, 0.0, 0.0, 0.0, 0.0])
    het = np.array([1e3, 0.0, 0.0, 2e3, 0.0, 0.0, 10.0, 0.0, 0.0, 0.3, 0.1, 0.0, 0.2, 0.0])
    decay = homodyne_decay(hom, phi, q=0.01, h=1e6, dt=0.1, n=4)
    heterodyne_decay(het, phi, q=0.01, dt=0.1, n=4)
    sigma = np.linspace(1.0, 2.0, decay.size).reshape(decay.shape)
    for data in (fold_data(decay), fold_data(decay, sigma)):   # uniform and per-pair weights
        for p in (hom, static):
            fit_homodyne(p, phi, data, q=0.01, h=1e6, dt=0.1)
        fit_heterodyne(het, phi, data, q=0.01, dt=0.1)
    cumulative_integral(1.0, 0.5, 0.0, 0.1, 4)
