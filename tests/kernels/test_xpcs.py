"""XPCS kernels against plain numpy references written from the DESIGN.md formulas (rtol 1e-12)."""

import numba
import numpy as np
import pytest

from hpcopt.kernels import xpcs as kx

RTOL = 1e-12
Q, H, DT = 0.01, 1e6, 0.1


# --------------------------------------------------------------------------- references
def ref_integral(coef, expo, offset, dt, n):
    t = dt * np.arange(1, n + 1)
    r = coef * t ** expo + offset
    return np.concatenate([[0.0], np.cumsum(dt * (r[:-1] + r[1:]) / 2)])


def ref_sinc(x):
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 1.0, np.sin(safe) / safe)


def ref_homodyne(p, phi, q, h, dt, n):
    cd = ref_integral(p[0], p[1], p[2], dt, n)
    cg = ref_integral(p[3], p[4], p[5], dt, n)
    jd = np.abs(cd[None, :] - cd[:, None])
    jg = np.abs(cg[None, :] - cg[:, None])
    g1 = np.exp(-q ** 2 / 2 * jd)
    k = q * h / (2 * np.pi) * np.cos(np.radians(p[6] - np.asarray(phi)))
    return g1[None] ** 2 * ref_sinc(k[:, None, None] * jg[None]) ** 2


def ref_heterodyne(p, phi, q, dt, n):
    t = dt * np.arange(1, n + 1)
    cr, cs, cv = (ref_integral(p[i], p[i + 1], p[i + 2], dt, n) for i in (0, 3, 6))
    g1r = np.exp(-q ** 2 / 2 * np.abs(cr[None, :] - cr[:, None]))
    g1s = np.exp(-q ** 2 / 2 * np.abs(cs[None, :] - cs[:, None]))
    xs = np.clip(p[9] * np.exp(p[10] * (t - p[11])) + p[12], 0, 1)
    xr = 1 - xs
    rr, ss = np.outer(xr, xr), np.outer(xs, xs)
    norm = np.outer(xr ** 2 + xs ** 2, xr ** 2 + xs ** 2)
    k = q * np.cos(np.radians(p[13] - np.asarray(phi)))
    phase = k[:, None, None] * np.abs(cv[None, :] - cv[:, None])[None]
    return (rr ** 2 * g1r ** 2 + ss ** 2 * g1s ** 2 + 2 * rr * ss * g1r * g1s * np.cos(phase)) / norm


def ref_contrast_offset(decay, c2, sigma):
    """Weighted linear least squares per angle by lstsq (not normal equations)."""
    contrast, offset = [], []
    for s, d, sg in zip(decay, c2, sigma):
        s, d, sw = s.ravel(), d.ravel(), 1.0 / sg.ravel()
        if np.all(s == s[0]):  # flat decay: contrast 0, weighted mean
            w = sw ** 2
            contrast.append(0.0)
            offset.append(np.sum(w * d) / np.sum(w))
            continue
        a = np.stack([np.ones_like(s), s], axis=1) * sw[:, None]
        (o, c), *_ = np.linalg.lstsq(a, d * sw, rcond=None)
        contrast.append(c)
        offset.append(o)
    return np.array(contrast), np.array(offset)


def ref_chi2(decay, c2, sigma):
    contrast, offset = ref_contrast_offset(decay, c2, sigma)
    model = offset[:, None, None] + contrast[:, None, None] * decay
    return float(np.sum(((c2 - model) / sigma) ** 2)), contrast, offset


def noisy_data(decay, rng, noise=0.01):
    """Unsymmetric data and sigma around a model, so the folding is exercised."""
    n_phi = decay.shape[0]
    contrast = rng.uniform(0.1, 0.4, n_phi)
    offset = rng.uniform(0.9, 1.1, n_phi)
    sigma = noise * rng.uniform(0.5, 2.0, decay.shape)
    c2 = offset[:, None, None] + contrast[:, None, None] * decay + sigma * rng.normal(size=decay.shape)
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
def test_cumulative_integral_matches_reference(coef, expo, offset):
    got = kx.cumulative_integral(coef, expo, offset, 0.07, 200)
    want = ref_integral(coef, expo, offset, 0.07, 200)
    assert got[0] == 0.0
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * np.abs(want).max())


@pytest.mark.parametrize("p", homodyne_cases())
def test_homodyne_decay_matches_reference(p):
    got = kx.homodyne_decay(p, PHI, q=Q, h=H, dt=DT, n=40)
    want = ref_homodyne(np.array(p), PHI, Q, H, DT, 40)
    assert got.shape == (4, 40, 40)
    # values are multiplied by a contrast and added to an offset ~1: 1e-300 absolute is nothing
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-300)


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


def test_heterodyne_limits_of_the_sample_fraction():
    """x_s = 1 (f3 = 2 clipped) is the sample alone: g1_s**2; x_s = 0 the reference alone."""
    n = 25
    for key, first in (("all sample (x_s = 1)", 3), ("all reference (x_s = 0)", 0)):
        p = HETERODYNE_SETS[key]
        c = ref_integral(*p[first:first + 3], DT, n)
        g1sq = np.exp(-Q ** 2 * np.abs(c[None, :] - c[:, None]))
        got = kx.heterodyne_decay(p, PHI, q=Q, dt=DT, n=n)
        np.testing.assert_allclose(got, np.broadcast_to(g1sq, got.shape), rtol=RTOL)


def test_contrast_offset_matches_lstsq():
    rng = np.random.default_rng(3)
    decay = ref_homodyne(np.array(HOMODYNE_SETS["typical"]), PHI, Q, H, DT, 30)
    c2, sigma = noisy_data(decay, rng)
    got = kx.contrast_offset(decay, c2, sigma)
    want = ref_contrast_offset(decay, c2, sigma)
    np.testing.assert_allclose(got[0], want[0], rtol=RTOL)
    np.testing.assert_allclose(got[1], want[1], rtol=RTOL)
    # unweighted: sigma None means sigma = 1
    got = kx.contrast_offset(decay, c2)
    want = ref_contrast_offset(decay, c2, np.ones_like(c2))
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), rtol=RTOL)


def test_contrast_offset_of_a_flat_decay_is_the_weighted_mean():
    rng = np.random.default_rng(4)
    decay = np.ones((2, 10, 10))
    c2, sigma = noisy_data(decay, rng)
    contrast, offset = kx.contrast_offset(decay, c2, sigma)
    w = 1 / sigma ** 2
    assert np.all(contrast == 0.0)
    np.testing.assert_allclose(offset, (w * c2).sum(axis=(1, 2)) / w.sum(axis=(1, 2)), rtol=RTOL)


@pytest.mark.parametrize("n", [7, 40, 150])  # 150: several decay blocks of 64, a partial one
@pytest.mark.parametrize("p", homodyne_cases())
def test_fused_homodyne_chi2_matches_reference(p, n):
    rng = np.random.default_rng(n)
    decay = ref_homodyne(np.array(p), PHI, Q, H, DT, n)
    c2, sigma = noisy_data(decay, rng, noise=rng.choice([1e-3, 1e-2, 1e-1]))
    chi2, contrast, offset = kx.fit_homodyne(p, PHI, kx.fold_data(c2, sigma), q=Q, h=H, dt=DT)
    want, want_c, want_o = ref_chi2(decay, c2, sigma)
    assert chi2 == pytest.approx(want, rel=RTOL)
    np.testing.assert_allclose(contrast, want_c, rtol=RTOL, atol=1e-300)
    np.testing.assert_allclose(offset, want_o, rtol=RTOL)


@pytest.mark.parametrize("n", [9, 70])
@pytest.mark.parametrize("p", heterodyne_cases())
def test_fused_heterodyne_chi2_matches_reference(p, n):
    rng = np.random.default_rng(n + 1)
    decay = ref_heterodyne(np.array(p), PHI, Q, DT, n)
    c2, sigma = noisy_data(decay, rng, noise=rng.choice([1e-3, 1e-2]))
    chi2, contrast, offset = kx.fit_heterodyne(p, PHI, kx.fold_data(c2, sigma), q=Q, dt=DT)
    want, want_c, want_o = ref_chi2(decay, c2, sigma)
    assert chi2 == pytest.approx(want, rel=RTOL)
    np.testing.assert_allclose(contrast, want_c, rtol=RTOL, atol=1e-300)
    np.testing.assert_allclose(offset, want_o, rtol=RTOL)


def test_fused_chi2_of_symmetric_exact_data_is_zero_and_flat_decay_is_handled():
    p = np.array(HOMODYNE_SETS["typical"])
    decay = ref_homodyne(p, PHI, Q, H, DT, 20)
    c2 = 1.0 + 0.3 * decay
    chi2, contrast, offset = kx.fit_homodyne(p, PHI, kx.fold_data(c2), q=Q, h=H, dt=DT)
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


def test_fold_keeps_chi2_of_every_symmetric_model():
    """Folding is exact: sum w (c2 - m)**2 over the full matrix == folded sum + const."""
    rng = np.random.default_rng(7)
    c2 = rng.normal(size=(2, 9, 9))
    sigma = rng.uniform(0.5, 2, size=c2.shape)
    m = rng.normal(size=(2, 9, 9))
    m = m + m.transpose(0, 2, 1)
    f = kx.fold_data(c2, sigma)
    iu = np.triu_indices(9)
    folded = sum(np.sum(f.w[a] * (f.d[a] - m[a][iu]) ** 2) for a in range(2)) + f.const
    assert folded == pytest.approx(np.sum(((c2 - m) / sigma) ** 2), rel=RTOL)


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
    (lambda: kx.contrast_offset(np.ones((2, 3, 3)), np.ones((1, 3, 3))), "angles"),
    (lambda: kx.fit_homodyne(GOOD, PHI, kx.fold_data(np.ones((2, 3, 3))), q=Q, h=H, dt=DT), "angles"),
    (lambda: kx.fit_homodyne(GOOD, PHI, np.ones((4, 6)), q=Q, h=H, dt=DT), "FoldedData"),
])
def test_wrappers_refuse_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_warm_up_compiles_every_kernel():
    kx.warm_up()
    kernels = [getattr(kx, name) for name in dir(kx) if name.startswith("_fit") or name in (
        "_homodyne_decay", "_heterodyne_decay", "_contrast_offset", "_fold", "_cumulative_trapezoid")]
    assert len(kernels) == 7
    if not numba.config.DISABLE_JIT:
        assert all(k.signatures for k in kernels)
