"""Compiled XPCS chi-squared against numpy, and against the memory-bandwidth bound.

For ``xpcs:homodyne`` at n = 100, 500, 1000 time points and 3 angles:

* ``compiled``: :func:`hpcopt.kernels.xpcs.fit_homodyne`, one evaluation of the model,
  the per-angle closed-form contrast/offset and chi2, fused, no model array (the hot path
  of a fit); the data are folded once per dataset (``fold``, reported, not counted);
* ``numpy``: the same quantities in plain vectorized numpy from the DESIGN.md formulas
  (full (n, n) matrices; g1 computed once for all angles);
* ``bound``: bytes of c2 + sigma read once (2 * 3 n**2 * 8) divided by the copy bandwidth
  of a large numpy copy measured in the same run (read + write bytes per second);
  ``time_over_bound`` = compiled time / bound time (1 = at the bandwidth bound).  The fused
  kernel reads the folded triangle (half those bytes) 1.125 times, so it can beat 1.

Every size covers the same 5 s window (dt = 5 s / n) so the decay looks alike.

Times are the best of several repeats.  ``run() -> dict`` of plain floats; ``python
bench/bench_kernels.py`` prints a table and the JSON.
"""

from __future__ import annotations

import json
import time

import numpy as np

from hpcopt.kernels import xpcs as kx
from hpcopt.models.xpcs import DEFAULT_PARAMS, HOMODYNE_PARAMS, simulate

SIZES = (100, 500, 1000)
PHI = (0.0, 45.0, 90.0)


def numpy_chi2(p, phi, q, h, dt, c2, sigma) -> float:
    """chi2 of the homodyne model with closed-form contrast/offset, plain numpy."""
    n = c2.shape[1]
    t = dt * np.arange(1, n + 1)

    def integral(coef, expo, offset):
        r = coef * t ** expo + offset
        return np.concatenate([[0.0], np.cumsum(dt * (r[:-1] + r[1:]) / 2)])

    cd, cg = integral(*p[0:3]), integral(*p[3:6])
    g1sq = np.exp(-q ** 2 * np.abs(cd[None, :] - cd[:, None]))
    jg = np.abs(cg[None, :] - cg[:, None])
    w = 1.0 / sigma ** 2
    total = 0.0
    for a, angle in enumerate(phi):
        x = q * h / (2 * np.pi) * np.cos(np.radians(p[6] - angle)) * jg
        sinc = np.sin(x) / np.where(x == 0, 1.0, x)
        sinc[x == 0] = 1.0
        s = g1sq * sinc ** 2
        wa, d = w[a], c2[a]
        s1, ss, sss = wa.sum(), (wa * s).sum(), (wa * s * s).sum()
        sd, ssd = (wa * d).sum(), (wa * s * d).sum()
        contrast = (s1 * ssd - ss * sd) / (s1 * sss - ss * ss)
        offset = (sd - contrast * ss) / s1
        total += float(np.sum(wa * (d - offset - contrast * s) ** 2))
    return total


def best_time(f, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def copy_bandwidth(n_bytes: int = 256 * 2 ** 20, repeats: int = 5) -> float:
    """Bytes per second moved (read + write) by a large numpy copy."""
    src = np.ones(n_bytes // 8)
    dst = np.empty_like(src)
    return 2 * src.nbytes / best_time(lambda: np.copyto(dst, src), repeats)


def run(sizes=SIZES, repeats: int = 5) -> dict:
    """Figures as a flat dict of floats (keys prefixed xpcs_homodyne_n<N>_)."""
    out: dict[str, float] = {}
    bandwidth = copy_bandwidth()
    out["copy_bandwidth_GBps"] = bandwidth / 1e9
    p = np.array([DEFAULT_PARAMS["homodyne"][k] for k in HOMODYNE_PARAMS])
    for n in sizes:
        data = simulate("homodyne", n=n, phi=PHI, dt=5.0 / n, noise=0.01, seed=n)  # same 5 s window
        q, h, dt, c2, sigma = data.q, data.h, data.dt, data.c2, data.sigma
        fold_s = best_time(lambda: kx.fold_data(c2, sigma), 3)
        folded = kx.fold_data(c2, sigma)
        compiled = kx.fit_homodyne(p, PHI, folded, q=q, h=h, dt=dt)[0]  # compiles or loads the cache
        reference = numpy_chi2(p, PHI, q, h, dt, c2, sigma)
        if abs(compiled - reference) > 1e-10 * reference:
            raise AssertionError(f"n={n}: compiled chi2 {compiled!r} != numpy {reference!r}")
        t_compiled = best_time(lambda: kx.fit_homodyne(p, PHI, folded, q=q, h=h, dt=dt), repeats)
        t_numpy = best_time(lambda: numpy_chi2(p, PHI, q, h, dt, c2, sigma), max(2, repeats // 2))
        bound = (c2.nbytes + sigma.nbytes) / bandwidth
        key = f"xpcs_homodyne_n{n}_"
        out[key + "numpy_s"] = t_numpy
        out[key + "compiled_s"] = t_compiled
        out[key + "speedup"] = t_numpy / t_compiled
        out[key + "bound_s"] = bound
        out[key + "time_over_bound"] = t_compiled / bound
        out[key + "fold_once_s"] = fold_s
    return out


def table(figures: dict) -> str:
    lines = [f"copy bandwidth {figures['copy_bandwidth_GBps']:.1f} GB/s (read + write)",
             f"{'n':>5} {'numpy ms':>9} {'compiled ms':>12} {'speedup':>8} {'bound ms':>9} "
             f"{'time/bound':>10} {'fold ms':>8}"]
    for n in sorted({int(k.split('_n')[1].split('_')[0]) for k in figures if k.startswith("xpcs_")}):
        f = {k.split(f"_n{n}_")[1]: v for k, v in figures.items() if f"_n{n}_" in k}
        lines.append(f"{n:>5} {f['numpy_s'] * 1e3:>9.2f} {f['compiled_s'] * 1e3:>12.3f} "
                     f"{f['speedup']:>8.1f} {f['bound_s'] * 1e3:>9.3f} {f['time_over_bound']:>10.2f} "
                     f"{f['fold_once_s'] * 1e3:>8.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    figures = run()
    print(table(figures))
    print(json.dumps(figures, indent=1))
