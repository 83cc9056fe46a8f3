"""XPCS kernels against plain numpy references written from the formulas of docs/models.md
(rtol 1e-12), and the formulas against independent derivations: the shear factor against
a brute-force average over the gap, the diffusion factor against the characteristic
function of a Gaussian displacement."""

import numba
import numpy as np
import pytest

from hpcopt.kernels import xpcs as kx

RTOL = 1e-12
Q, H, DT = 0.01, 1e6, 0.1


# --------------------------------------------------------------------------- references
def ref_times(dt, n, t0=None):
    return (dt if t0 is None else t0) + dt * np.arange(n)


def ref_integral(coef, expo, offset, dt, n, t0=None):
    t = ref_times(dt, n, t0)
    r = coef * t ** expo + offset
    return np.concatenate([[0.0], np.cumsum(dt * (r[:-1] + r[1:]) / 2)])


def ref_sinc(x):
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 1.0, np.sin(safe) / safe)


def ref_homodyne(p, phi, q, h, dt, n, t0=None):
    cd = ref_integral(p[0], p[1], p[2], dt, n, t0)
    cg = ref_integral(p[3], p[4], p[5], dt, n, t0)
    jd = np.abs(cd[None, :] - cd[:, None])
    jg = np.abs(cg[None, :] - cg[:, None])
    g1 = np.exp(-q ** 2 / 2 * jd)
    k = q * h / 2 * np.cos(np.radians(p[6] - np.asarray(phi)))
    return g1[None] ** 2 * ref_sinc(k[:, None, None] * jg[None]) ** 2


def ref_heterodyne(p, phi, q, dt, n, t0=None):
    t = ref_times(dt, n, t0)
    cr, cs, cv = (ref_integral(p[i], p[i + 1], p[i + 2], dt, n, t0) for i in (0, 3, 6))
    g1r = np.exp(-q ** 2 / 2 * np.abs(cr[None, :] - cr[:, None]))
    g1s = np.exp(-q ** 2 / 2 * np.abs(cs[None, :] - cs[:, None]))
    xs = np.clip(p[9] * np.exp(p[10] * (t - p[11])) + p[12], 0, 1)
    xr = 1 - xs
    rr, ss = np.outer(xr, xr), np.outer(xs, xs)
    norm = np.outer(xr ** 2 + xs ** 2, xr ** 2 + xs ** 2)
    k = q * np.cos(np.radians(p[13] - np.asarray(phi)))
    phase = k[:, None, None] * np.abs(cv[None, :] - cv[:, None])[None]
    return (rr ** 2 * g1r ** 2 + ss ** 2 * g1s ** 2 + 2 * rr * ss * g1r * g1s * np.cos(phase)) / norm


def fitted_mask(n, pairs="both", diagonal=True):
    """The elements of an (n, n) c2 that enter chi2: all (pairs "both") or the upper triangle."""
    mask = np.ones((n, n), bool) if pairs == "both" else np.triu(np.ones((n, n), bool), 1)
    np.fill_diagonal(mask, diagonal)
    return mask


def ref_fit(decay, c2, sigma, pairs="both", diagonal=True, constant=False):
    """chi2, contrast, offset by lstsq on the fitted elements (not by normal equations).

    A flat decay (contrast not identifiable) gives contrast 0 and the weighted mean.
    """
    mask = fitted_mask(c2.shape[1], pairs, diagonal)
    groups = [list(range(len(c2)))] if constant else [[a] for a in range(len(c2))]
    contrast, offset, chi2 = np.empty(len(c2)), np.empty(len(c2)), 0.0
    for g in groups:
        s = np.concatenate([decay[a][mask] for a in g])
        d = np.concatenate([c2[a][mask] for a in g])
        sw = np.concatenate([1.0 / sigma[a][mask] for a in g])
        if np.all(s == s[0]):
            c, o = 0.0, np.sum(sw ** 2 * d) / np.sum(sw ** 2)
        else:
            a_ = np.stack([np.ones_like(s), s], axis=1) * sw[:, None]
            (o, c), *_ = np.linalg.lstsq(a_, d * sw, rcond=None)
        contrast[g], offset[g] = c, o
        chi2 += float(np.sum(((d - o - c * s) * sw) ** 2))
    return chi2, contrast, offset


def ref_chi2(decay, c2, sigma):
    return ref_fit(decay, c2, sigma)


def noisy_data(decay, rng, noise=0.01, symmetric=False):
    """Data and sigma around a model: unsymmetric (both triangles measured, exercises the
    folding) or symmetric (one measurement per pair, as beamline files hold)."""
    n_phi = decay.shape[0]
    contrast = rng.uniform(0.1, 0.4, n_phi)
    offset = rng.uniform(0.9, 1.1, n_phi)
    sigma = noise * rng.uniform(0.5, 2.0, decay.shape)
    eps = rng.normal(size=decay.shape)
    if symmetric:
        upper = np.triu(np.ones(decay.shape[1:], bool))
        sigma = np.where(upper, sigma, sigma.transpose(0, 2, 1))
        eps = np.where(upper, eps, eps.transpose(0, 2, 1))
    c2 = offset[:, None, None] + contrast[:, None, None] * decay + sigma * eps
    return c2, sigma


# --------------------------------------------------------------------------- parameter sets
HOMODYNE_SETS = {
    "typical": [6000.0, -0.5, 300.0, 1e-4, 0.5, 1e-5, 10.0],
    "no-shear (Phi = 0, sinc 1)": [6000.0, -0.5, 300.0, 0.0, 0.5, 0.0, 10.0],
    "strong shear": [2000.0, 0.3, 0.0, 5e-3, -0.3, 1e-4, -35.0],
    "flow perpendicular (tiny Phi)": [6000.0, -0.5, 300.0, 1e-4, 0.5, 1e-5, 90.0],
    "D changes sign (non-monotonic)": [6000.0, -0.5, -2500.0, 1e-4, 0.5, -2e-4, 10.0],
    "fast decay (underflow)": [5e7, 0.0, 0.0, 1e-4, 0.0, 0.0, 0.0],
    "negative shear": [800.0, 1.2, 10.0, -3e-4, 1.0, 0.0, 200.0],
}
HETERODYNE_SETS = {
    "typical": [1500.0, -0.2, 50.0, 6000.0, -0.5, 300.0, 40.0, 0.3, 5.0, 0.3, 0.15, 0.0, 0.2, 10.0],
    "x_s clipped at 0 and 1": [1500.0, -0.2, 50.0, 6000.0, -0.5, 300.0, 40.0, 0.3, 5.0,
                               0.1, 1.5, 0.5, -0.2, 10.0],
    "all sample (x_s = 1)": [1500.0, 0.0, 0.0, 3000.0, 0.2, 0.0, 100.0, 0.0, 0.0,
                             0.0, 0.0, 0.0, 2.0, 0.0],
    "all reference (x_s = 0)": [1500.0, 0.4, 0.0, 3000.0, 0.2, 0.0, 100.0, 0.0, 0.0,
                                0.0, 0.0, 0.0, -1.0, 0.0],
    "no flow": [1500.0, -0.2, 50.0, 6000.0, -0.5, 300.0, 0.0, 0.3, 0.0, 0.3, 0.15, 0.0, 0.2, 45.0],
    "non-monotonic": [1500.0, -0.2, -600.0, 6000.0, -0.5, -2000.0, 40.0, 0.3, -60.0,
                      0.3, -0.3, 1.0, 0.4, 120.0],
}
PHI = np.array([0.0, 45.0, 90.0, 137.5])


def random_homodyne(rng):
    return [rng.uniform(500, 2e4), rng.uniform(-1.0, 1.0), rng.uniform(0, 1000), rng.uniform(-5e-4, 5e-4),
            rng.uniform(-1.0, 1.0), rng.uniform(-1e-4, 1e-4), rng.uniform(-180, 180)]


def random_heterodyne(rng):
    return [rng.uniform(100, 5000), rng.uniform(-1, 1), rng.uniform(0, 200), rng.uniform(500, 2e4),
            rng.uniform(-1, 1), rng.uniform(0, 1000), rng.uniform(-100, 100), rng.uniform(-0.5, 1),
            rng.uniform(-10, 10), rng.uniform(-0.5, 0.5), rng.uniform(-1, 1), rng.uniform(0, 2),
            rng.uniform(-0.2, 1.2), rng.uniform(-180, 180)]


def homodyne_cases():
    rng = np.random.default_rng(11)
    cases = [pytest.param(p, id=k) for k, p in HOMODYNE_SETS.items()]
    return cases + [pytest.param(random_homodyne(rng), id=f"random{i}") for i in range(4)]


def heterodyne_cases():
    rng = np.random.default_rng(12)
    cases = [pytest.param(p, id=k) for k, p in HETERODYNE_SETS.items()]
    return cases + [pytest.param(random_heterodyne(rng), id=f"random{i}") for i in range(4)]


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("coef,expo,offset", [(6000.0, -0.5, 300.0), (1e-4, 0.5, 1e-5), (0.0, 3.0, -2.0),
                                              (3.0, 1.7, -50.0), (-2.0, -1.3, 0.0)])
@pytest.mark.parametrize("t0", [None, 3.5])
def test_cumulative_integral_matches_reference(coef, expo, offset, t0):
    got = kx.cumulative_integral(coef, expo, offset, 0.07, 200, t0=t0)
    want = ref_integral(coef, expo, offset, 0.07, 200, t0)
    assert got[0] == 0.0
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * np.abs(want).max())


def test_cumulative_integral_converges_to_the_exact_integral():
    """Trapezoid rule on t_k = t0 + dt k: error O(dt**2) against the closed form."""
    exact = lambda t: 2.0 / 3.0 * t ** 1.5 + 0.1 * t   # integral of t**0.5 + 0.1
    errors = []
    for n in (50, 100, 200):
        dt = 5.0 / n
        c = kx.cumulative_integral(1.0, 0.5, 0.1, dt, n + 1, t0=1.0)
        errors.append(abs(c[-1] - (exact(6.0) - exact(1.0))))
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.02)
    assert errors[1] / errors[2] == pytest.approx(4.0, rel=0.02)


@pytest.mark.parametrize("p", homodyne_cases())
def test_homodyne_decay_matches_reference(p):
    got = kx.homodyne_decay(p, PHI, q=Q, h=H, dt=DT, n=40)
    want = ref_homodyne(np.array(p), PHI, Q, H, DT, 40)
    assert got.shape == (4, 40, 40)
    # values are multiplied by a contrast and added to an offset ~1: 1e-300 absolute is nothing
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-300)
    later = kx.homodyne_decay(p, PHI, q=Q, h=H, dt=DT, n=40, t0=2.0)   # a window starting at 2 s
    np.testing.assert_allclose(later, ref_homodyne(np.array(p), PHI, Q, H, DT, 40, 2.0),
                               rtol=RTOL, atol=1e-300)


@pytest.mark.parametrize("gamma_dot,beta,phi0,phi", [(2e-4, 0.0, 0.0, 0.0), (3e-4, 0.5, 10.0, 45.0),
                                                      (5e-4, -0.3, 30.0, 100.0), (1e-3, 1.0, 0.0, 0.0)])
def test_shear_factor_is_the_average_over_the_gap(gamma_dot, beta, phi0, phi):
    """Independent derivation: a linear velocity profile v(y) = gamma_dot(t) y across the gap
    0 <= y <= h moves a scatterer at height y by y * Gamma, Gamma = integral of gamma_dot from
    t_i to t_j; the field correlation is the average over y of exp(i q cos(phi0 - phi) y Gamma)
    and the homodyne decay its squared modulus.  The average is taken here by brute force
    (midpoint rule over the gap), never through a sinc."""
    n = 30
    p = [0.0, 0.0, 0.0, gamma_dot, beta, 0.0, phi0]   # no diffusion: the decay is the shear factor
    got = kx.homodyne_decay(p, [phi], q=Q, h=H, dt=DT, n=n)[0]
    gamma = ref_integral(gamma_dot, beta, 0.0, DT, n)                    # the sheared strain
    y = (np.arange(20000) + 0.5) / 20000 * H                             # heights across the gap
    qx = Q * np.cos(np.radians(phi0 - phi))
    want = np.empty((n, n))
    for i in range(n):
        field = np.exp(1j * qx * np.outer(gamma - gamma[i], y)).mean(axis=1)
        want[i] = np.abs(field) ** 2
    assert want.min() < 0.5                                # the shear is visible in this window
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)  # midpoint rule error ~ (phase/N)**2


def test_diffusion_factor_is_the_characteristic_function_of_a_gaussian_displacement():
    """Brownian limit: with D(t) = J constant the displacement along q after t_j - t_i is
    Gaussian with variance J (t_j - t_i) (J = d Var/dt, i.e. 2 D_SE for a Stokes-Einstein
    diffusion coefficient D_SE); g1 = E exp(i q x), taken by quadrature of the density."""
    n, J = 20, 5000.0
    got = kx.homodyne_decay([0.0, 0.0, J, 0.0, 0.0, 0.0, 0.0], [0.0], q=Q, h=H, dt=DT, n=n)[0]
    tau = DT * np.arange(1, n)                              # the lags of the first row
    g1 = np.empty(n - 1)
    for k, var in enumerate(J * tau):
        x = np.linspace(-12, 12, 40001) * np.sqrt(var)
        density = np.exp(-x ** 2 / (2 * var)) / np.sqrt(2 * np.pi * var)
        g1[k] = np.trapezoid(density * np.cos(Q * x), x)
    np.testing.assert_allclose(got[0, 1:], g1 ** 2, rtol=1e-8)
    # the Stokes-Einstein reading: D_SE = J / 2 gives the textbook g1 = exp(-q**2 D_SE tau)
    np.testing.assert_allclose(got[0, 1:], np.exp(-Q ** 2 * (J / 2) * tau) ** 2, rtol=RTOL)


def test_homodyne_without_shear_is_g1_squared():
    p = HOMODYNE_SETS["no-shear (Phi = 0, sinc 1)"]
    got = kx.homodyne_decay(p, PHI, q=Q, h=H, dt=DT, n=30)
    cd = ref_integral(*p[:3], DT, 30)
    g1sq = np.exp(-Q ** 2 * np.abs(cd[None, :] - cd[:, None]))
    for a in range(len(PHI)):
        np.testing.assert_allclose(got[a], g1sq, rtol=RTOL)
    assert np.all(np.diagonal(got, axis1=1, axis2=2) == 1.0)


@pytest.mark.parametrize("p", heterodyne_cases())
def test_heterodyne_decay_matches_reference(p):
    got = kx.heterodyne_decay(p, PHI, q=Q, dt=DT, n=40)
    want = ref_heterodyne(np.array(p), PHI, Q, DT, 40)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-300)
    later = kx.heterodyne_decay(p, PHI, q=Q, dt=DT, n=40, t0=1.3)
    np.testing.assert_allclose(later, ref_heterodyne(np.array(p), PHI, Q, DT, 40, 1.3),
                               rtol=RTOL, atol=1e-300)


def test_heterodyne_limits_of_the_sample_fraction():
    """x_s = 1 (f3 = 2 clipped) is the sample alone: g1_s**2; x_s = 0 the reference alone."""
    n = 25
    for key, first in (("all sample (x_s = 1)", 3), ("all reference (x_s = 0)", 0)):
        p = HETERODYNE_SETS[key]
        c = ref_integral(*p[first:first + 3], DT, n)
        g1sq = np.exp(-Q ** 2 * np.abs(c[None, :] - c[:, None]))
        got = kx.heterodyne_decay(p, PHI, q=Q, dt=DT, n=n)
        np.testing.assert_allclose(got, np.broadcast_to(g1sq, got.shape), rtol=RTOL)


def test_every_decay_is_one_on_the_diagonal():
    """The fused kernels take the diagonal as decay 1 without computing it."""
    rng = np.random.default_rng(8)
    for _ in range(3):
        hom = kx.homodyne_decay(random_homodyne(rng), PHI, q=Q, h=H, dt=DT, n=12)
        het = kx.heterodyne_decay(random_heterodyne(rng), PHI, q=Q, dt=DT, n=12)
        for d in (hom, het):
            np.testing.assert_allclose(np.diagonal(d, axis1=1, axis2=2), 1.0, rtol=1e-14)


def _fused(variant, p, data, t0=None, scaling="individual"):
    if variant == "homodyne":
        return kx.fit_homodyne(p, PHI, data, q=Q, h=H, dt=DT, t0=t0, scaling=scaling)
    return kx.fit_heterodyne(p, PHI, data, q=Q, dt=DT, t0=t0, scaling=scaling)


def _check_fused(variant, p, n, seed, *, pairs="both", diagonal=True, scaling="individual",
                 t0=None, uniform=False):
    rng = np.random.default_rng(seed)
    ref = ref_homodyne if variant == "homodyne" else ref_heterodyne
    decay = ref(np.array(p), PHI, Q, *((H,) if variant == "homodyne" else ()), DT, n, t0)
    c2, sigma = noisy_data(decay, rng, noise=rng.choice([1e-3, 1e-2, 1e-1]),
                           symmetric=pairs == "once")
    if uniform:
        sigma = np.full_like(c2, sigma.flat[0])
    data = kx.fold_data(c2, sigma, pairs=pairs, diagonal=diagonal)
    assert (data.w.shape[1] == 0) == uniform
    chi2, contrast, offset = _fused(variant, p, data, t0, scaling)
    want, want_c, want_o = ref_fit(decay, c2, sigma, pairs, diagonal, scaling == "constant")
    assert chi2 == pytest.approx(want, rel=RTOL)
    np.testing.assert_allclose(contrast, want_c, rtol=RTOL, atol=1e-300)
    np.testing.assert_allclose(offset, want_o, rtol=RTOL)


@pytest.mark.parametrize("n", [7, 40, 150])  # 150: several decay blocks of 64, a partial one
@pytest.mark.parametrize("p", homodyne_cases())
def test_fused_homodyne_chi2_matches_reference(p, n):
    _check_fused("homodyne", p, n, n)


@pytest.mark.parametrize("n", [9, 70])
@pytest.mark.parametrize("p", heterodyne_cases())
def test_fused_heterodyne_chi2_matches_reference(p, n):
    _check_fused("heterodyne", p, n, n + 1)


FUSED_OPTIONS = {
    "symmetric data, pairs once": dict(pairs="once"),
    "diagonal left out": dict(diagonal=False),
    "pairs once, no diagonal": dict(pairs="once", diagonal=False),
    "constant scaling": dict(scaling="constant"),
    "constant scaling, pairs once": dict(scaling="constant", pairs="once"),
    "uniform weights": dict(uniform=True),
    "uniform weights, pairs once, no diagonal": dict(uniform=True, pairs="once", diagonal=False),
    "window starting at 4 s": dict(t0=4.0),
}


@pytest.mark.parametrize("variant,p", [("homodyne", HOMODYNE_SETS["typical"]),
                                       ("homodyne", HOMODYNE_SETS["strong shear"]),
                                       ("homodyne", HOMODYNE_SETS["no-shear (Phi = 0, sinc 1)"]),
                                       ("homodyne", HOMODYNE_SETS["D changes sign (non-monotonic)"]),
                                       ("heterodyne", HETERODYNE_SETS["typical"])])
@pytest.mark.parametrize("option", list(FUSED_OPTIONS))
def test_fused_chi2_options_match_reference(variant, p, option):
    _check_fused(variant, p, 90, 21, **FUSED_OPTIONS[option])


def test_fused_chi2_of_symmetric_exact_data_is_zero_and_flat_decay_is_handled():
    p = np.array(HOMODYNE_SETS["typical"])
    decay = ref_homodyne(p, PHI, Q, H, DT, 20)
    c2 = 1.0 + 0.3 * decay
    for pairs in ("both", "once"):
        chi2, contrast, offset = kx.fit_homodyne(p, PHI, kx.fold_data(c2, pairs=pairs), q=Q, h=H,
                                                 dt=DT)
        assert chi2 < 1e-20
        np.testing.assert_allclose(contrast, 0.3, rtol=1e-10)
        np.testing.assert_allclose(offset, 1.0, rtol=1e-10)
    flat = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # no diffusion, no shear: decay == 1
    rng = np.random.default_rng(5)
    c2, sigma = noisy_data(np.ones((4, 20, 20)), rng)
    chi2, contrast, offset = kx.fit_homodyne(flat, PHI, kx.fold_data(c2, sigma), q=Q, h=H, dt=DT)
    want, want_c, want_o = ref_chi2(np.ones_like(c2), c2, sigma)
    assert np.all(contrast == 0.0)
    assert chi2 == pytest.approx(want, rel=RTOL)
    np.testing.assert_allclose(offset, want_o, rtol=RTOL)


def test_fused_chi2_is_inf_when_the_model_is_not_finite():
    rng = np.random.default_rng(6)
    c2, sigma = noisy_data(np.ones((4, 12, 12)), rng)
    data = kx.fold_data(c2, sigma)
    overflow = [1e308, 1.0, 1e308, 0.0, 0.0, 0.0, 0.0]  # C_D = inf - inf: nan decay
    chi2, contrast, offset = kx.fit_homodyne(overflow, PHI, data, q=Q, h=H, dt=DT)
    assert chi2 == np.inf and np.all(np.isnan(contrast)) and np.all(np.isnan(offset))
    bad = [1.0, 0.0, 0.0, 1e308, 1.0, 1e308, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0]
    assert kx.fit_heterodyne(bad, PHI, data, q=Q, dt=DT)[0] == np.inf


@pytest.mark.parametrize("pairs,diagonal", [("both", True), ("both", False), ("once", True),
                                            ("once", False)])
def test_fold_keeps_chi2_of_every_symmetric_model(pairs, diagonal):
    """Folding is exact: the chi2 of the fitted elements == folded pair sum + diagonal + const."""
    rng = np.random.default_rng(7)
    c2 = rng.normal(size=(2, 9, 9))
    sigma = rng.uniform(0.5, 2, size=c2.shape)
    m = rng.normal(size=(2, 9, 9))
    m = m + m.transpose(0, 2, 1)
    f = kx.fold_data(c2, sigma, pairs=pairs, diagonal=diagonal)
    assert f.d.shape == f.w.shape == (2, 36) and f.diag.shape == f.diag_w.shape == (2, 9)
    iu = np.triu_indices(9, 1)
    folded = sum(np.sum(f.w[a] * (f.d[a] - m[a][iu]) ** 2)
                 + np.sum(f.diag_w[a] * (f.diag[a] - np.diagonal(m[a])) ** 2) for a in range(2))
    mask = fitted_mask(9, pairs, diagonal)
    assert folded + f.const == pytest.approx(np.sum((((c2 - m) / sigma) ** 2)[:, mask]), rel=RTOL)
    assert (f.const > 0) == (pairs == "both")


def test_fold_drops_uniform_weights():
    c2 = np.random.default_rng(9).normal(size=(3, 6, 6))
    sigma = np.broadcast_to(np.array([1.0, 2.0, 0.5])[:, None, None], c2.shape)
    f = kx.fold_data(c2, sigma)
    assert f.w.shape == (3, 0)
    np.testing.assert_allclose(f.w0, 2 / np.array([1.0, 2.0, 0.5]) ** 2)  # both triangles: w1 + w2
    assert kx.fold_data(c2, sigma, pairs="once").w0.tolist() == [1.0, 0.25, 4.0]


# --------------------------------------------------------------------------- validation
GOOD = HOMODYNE_SETS["typical"]


@pytest.mark.parametrize("call,match", [
    (lambda: kx.homodyne_decay(GOOD[:6], PHI, q=Q, h=H, dt=DT, n=5), "vector of 7"),
    (lambda: kx.homodyne_decay([np.nan] + GOOD[1:], PHI, q=Q, h=H, dt=DT, n=5), "finite"),
    (lambda: kx.homodyne_decay(GOOD, PHI, q=-Q, h=H, dt=DT, n=5), "q must be"),
    (lambda: kx.homodyne_decay(GOOD, PHI, q=Q, h=H, dt=0.0, n=5), "dt must be"),
    (lambda: kx.homodyne_decay(GOOD, PHI, q=Q, h=H, dt=DT, n=1), "n .time points."),
    (lambda: kx.homodyne_decay(GOOD, [[0.0]], q=Q, h=H, dt=DT, n=5), "phi must be"),
    (lambda: kx.homodyne_decay(GOOD, ["a"], q=Q, h=H, dt=DT, n=5), "real numbers"),
    (lambda: kx.heterodyne_decay(GOOD, PHI, q=Q, dt=DT, n=5), "vector of 14"),
    (lambda: kx.cumulative_integral(1.0, np.inf, 0.0, DT, 5), "exponent"),
    (lambda: kx.fold_data(np.ones((2, 4, 5))), r"\(n_phi, n, n\)"),
    (lambda: kx.fold_data(np.ones((4, 4))), r"\(n_phi, n, n\)"),
    (lambda: kx.fold_data(np.full((1, 3, 3), np.nan)), "finite"),
    (lambda: kx.fold_data(np.ones((1, 3, 3)), np.zeros((1, 3, 3))), "sigma must be > 0"),
    (lambda: kx.fold_data(np.ones((1, 3, 3)), np.ones((1, 3, 2))), "sigma has shape"),
    (lambda: kx.fold_data(np.ones((1, 3, 3), dtype=complex)), "real numbers"),
    (lambda: kx.fold_data(np.ones((1, 3, 3)), pairs="half"), "pairs must be"),
    (lambda: kx.fit_homodyne(GOOD, PHI, kx.fold_data(np.ones((4, 3, 3))), q=Q, h=H, dt=DT,
                             scaling="shared"), "scaling must be"),
    (lambda: kx.homodyne_decay(GOOD, PHI, q=Q, h=H, dt=DT, n=5, t0=-1.0), "t0 must be"),
    (lambda: kx.fit_homodyne(GOOD, PHI, kx.fold_data(np.ones((2, 3, 3))), q=Q, h=H, dt=DT), "angles"),
    (lambda: kx.fit_homodyne(GOOD, PHI, np.ones((4, 6)), q=Q, h=H, dt=DT), "FoldedData"),
])
def test_wrappers_refuse_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_warm_up_compiles_every_kernel():
    kx.warm_up()
    kernels = [getattr(kx, name) for name in dir(kx) if name.startswith("_fit") or name in (
        "_homodyne_decay", "_heterodyne_decay", "_fold", "_cumulative_trapezoid")]
    assert len(kernels) == 6
    if not numba.config.DISABLE_JIT:
        assert all(k.signatures for k in kernels)
