"""Compiled XPCS chi-squared against numpy, and against the memory-bandwidth bound.

For ``xpcs:homodyne`` (laminar flow, all seven parameters) at n = 100, 500, 1000 time
points and 3 angles:

* ``compiled``: :func:`hpcopt.kernels.xpcs.fit_homodyne`, one evaluation of the model,
  the per-angle closed-form contrast/offset and chi2, fused, visiting each pair i < j of
  the symmetric model once, no model array (the hot path of a fit).  The data have a
  constant sigma, so the kernel reads only the c2 half matrices; ``weighted_compiled``
  gives every element its own sigma (the kernel then also reads the weight half matrices);
  ``static_compiled`` is the static mode (no shear).  The data are folded once per dataset
  (``fold_once``, reported, not counted);
* ``numpy``: the same chi2 in plain vectorized numpy from the formulas of docs/models.md
  (full (n, n) matrices; g1 computed once for all angles);
* bounds: bytes read once divided by the copy bandwidth of a large numpy copy (read +
  write bytes per second) timed in the same loop as the kernels:
  ``half_bound`` = the c2 and sigma half matrices (2 * 3 * n(n-1)/2 * 8 bytes), the target
  of issue 14 (``time_over_half_bound`` <= 1.2 at n = 1000);
  ``bound`` = the full c2 and sigma matrices (the figure before the pair kernel);
  ``read_bound`` = what the kernel reads (the c2 half matrices alone for constant sigma).

Every size covers the same 5 s window (dt = 5 s / n) so the decay looks alike.  Times are
the best of several repeats; each repeat times the copy and every kernel in turn (a kernel
call after an untimed warm-up call), so a busy machine slows them alike.  ``run() -> dict`` of plain floats; ``python bench/bench_kernels.py`` prints
a table and the JSON.
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
    """chi2 of the homodyne model with closed-form contrast/offset, plain numpy (full matrices)."""
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
        x = q * h / 2 * np.cos(np.radians(p[6] - angle)) * jg
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


def best_times(calls: dict, repeats: int, warm: tuple = ()) -> dict:
    """Best time of each call, the calls interleaved repeat by repeat; the calls named in
    `warm` run once untimed before each timed run (the steady state of a fit, which calls
    the kernel again and again on data already in the caches)."""
    best = {k: np.inf for k in calls}
    for _ in range(repeats):
        for k, f in calls.items():
            if k in warm:
                f()
            t0 = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


COPY_BYTES = 256 * 2 ** 20      # far beyond the caches: the copy measures memory bandwidth


def copy_bandwidth(n_bytes: int = COPY_BYTES, repeats: int = 5) -> float:
    """Bytes per second moved (read + write) by a large numpy copy."""
    src = np.ones(n_bytes // 8)
    dst = np.empty_like(src)
    return 2 * src.nbytes / best_time(lambda: np.copyto(dst, src), repeats)


def run(sizes=SIZES, repeats: int = 15) -> dict:
    """Figures as a flat dict of floats (keys prefixed xpcs_homodyne_n<N>_).

    The copy that gives the bandwidth is timed in the same interleaved loop as the
    kernels of each size, so a busy machine affects the bound and the kernels alike; each
    timed kernel call follows an untimed one (the copy evicts the caches; a fit calls the
    kernel on the same data again and again).
    """
    out: dict[str, float] = {}
    src = np.ones(COPY_BYTES // 8)
    dst = np.empty_like(src)
    bandwidths = []
    p = np.array([DEFAULT_PARAMS["homodyne"][k] for k in HOMODYNE_PARAMS])
    static = p.copy()
    static[3:] = 0.0                       # no shear: the static modes
    rng = np.random.default_rng(0)
    for n in sizes:
        data = simulate("homodyne", n=n, phi=PHI, dt=5.0 / n, noise=0.01, seed=n)  # same 5 s window
        q, h, dt, c2, sigma = data.q, data.h, data.dt, data.c2, data.sigma
        varied = sigma * rng.uniform(0.5, 2.0, sigma.shape)          # a sigma per element
        fold_s = best_time(lambda: kx.fold_data(c2, sigma), 3)
        folded, weighted = kx.fold_data(c2, sigma), kx.fold_data(c2, varied)
        assert folded.w.shape[1] == 0 and weighted.w.shape[1] > 0    # read c2 only / c2 and w
        calls = {
            "copy": lambda: np.copyto(dst, src),
            "compiled": lambda: kx.fit_homodyne(p, PHI, folded, q=q, h=h, dt=dt),
            "weighted": lambda: kx.fit_homodyne(p, PHI, weighted, q=q, h=h, dt=dt),
            "static": lambda: kx.fit_homodyne(static, PHI, folded, q=q, h=h, dt=dt),
        }
        for f in calls.values():
            f()                                                     # compile or load the cache
        for label, data_, sig in (("compiled", folded, sigma), ("weighted", weighted, varied)):
            got = kx.fit_homodyne(p, PHI, data_, q=q, h=h, dt=dt)[0]
            want = numpy_chi2(p, PHI, q, h, dt, c2, sig)
            if abs(got - want) > 1e-10 * want:
                raise AssertionError(f"n={n} {label}: compiled chi2 {got!r} != numpy {want!r}")
        t = best_times(calls, repeats, warm=("compiled", "weighted", "static"))
        bandwidth = 2 * src.nbytes / t["copy"]
        bandwidths.append(bandwidth)
        t_numpy = best_time(lambda: numpy_chi2(p, PHI, q, h, dt, c2, sigma), max(2, repeats // 5))
        half = 2 * len(PHI) * n * (n - 1) // 2 * 8         # c2 and sigma, pairs i < j
        full = c2.nbytes + sigma.nbytes
        key = f"xpcs_homodyne_n{n}_"
        out[key + "copy_bandwidth_GBps"] = bandwidth / 1e9
        out[key + "numpy_s"] = t_numpy
        out[key + "compiled_s"] = t["compiled"]
        out[key + "weighted_compiled_s"] = t["weighted"]
        out[key + "static_compiled_s"] = t["static"]
        out[key + "speedup"] = t_numpy / t["compiled"]
        out[key + "half_bound_s"] = half / bandwidth
        out[key + "time_over_half_bound"] = t["compiled"] / (half / bandwidth)
        out[key + "weighted_time_over_half_bound"] = t["weighted"] / (half / bandwidth)
        out[key + "time_over_read_bound"] = t["compiled"] / (folded.d.nbytes / bandwidth)
        out[key + "bound_s"] = full / bandwidth
        out[key + "time_over_bound"] = t["compiled"] / (full / bandwidth)
        out[key + "fold_once_s"] = fold_s
    out["copy_bandwidth_GBps"] = max(bandwidths) / 1e9
    return out


def table(figures: dict) -> str:
    lines = [f"copy bandwidth {figures['copy_bandwidth_GBps']:.1f} GB/s (read + write; best of the sizes)",
             f"{'n':>5} {'numpy ms':>9} {'compiled ms':>12} {'weighted ms':>12} {'static ms':>10} "
             f"{'speedup':>8} {'half bound ms':>14} {'t/half':>7} {'weighted t/half':>16} "
             f"{'t/read':>7} {'t/full':>7}"]
    for n in sorted({int(k.split('_n')[1].split('_')[0]) for k in figures if k.startswith("xpcs_")}):
        f = {k.split(f"_n{n}_")[1]: v for k, v in figures.items() if f"_n{n}_" in k}
        lines.append(f"{n:>5} {f['numpy_s'] * 1e3:>9.2f} {f['compiled_s'] * 1e3:>12.3f} "
                     f"{f['weighted_compiled_s'] * 1e3:>12.3f} {f['static_compiled_s'] * 1e3:>10.3f} "
                     f"{f['speedup']:>8.1f} {f['half_bound_s'] * 1e3:>14.3f} "
                     f"{f['time_over_half_bound']:>7.2f} {f['weighted_time_over_half_bound']:>16.2f} "
                     f"{f['time_over_read_bound']:>7.2f} {f['time_over_bound']:>7.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    figures = run()
    print(table(figures))
    print(json.dumps(figures, indent=1))
