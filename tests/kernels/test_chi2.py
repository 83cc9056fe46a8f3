"""Compiled NIST formulas and chi2 loops against plain numpy references (rtol 1e-12)."""

import numpy as np
import pytest
from numba import njit

from hpcopt.kernels import chi2 as K
from hpcopt.kernels.nist import N_KINDS, nist_eval
from hpcopt.models import nist as N

RTOL = 1e-12


def _problem(name):
    return N.read_nist(N.nist_path(name))


def _param_sets(p, rng):
    """Certified values, both starts and random perturbations of the certified values."""
    yield p.certified
    yield p.start1
    yield p.start2
    for _ in range(3):
        yield p.certified * (1 + 0.05 * rng.standard_normal(p.certified.size))


def _close(got, ref):
    # rtol on every point; values that cancel to ~0 get an atol at the same relative level
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=RTOL * np.max(np.abs(ref)))


def test_every_formula_kind_is_used():
    assert {N.get_model(n).kind for n in N.NIST_NAMES} == set(range(N_KINDS))
    assert len(N.FORMULAS) == N_KINDS


@pytest.mark.parametrize("name", N.NIST_NAMES)
def test_model_values_match_numpy(name):
    p = _problem(name)
    rng = np.random.default_rng(1)
    for b in _param_sets(p, rng):
        with np.errstate(all="ignore"):
            ref = p.model.function(p.x, b)
        got = nist_eval(p.model.kind, p.x, b)
        finite = np.isfinite(ref)
        np.testing.assert_array_equal(np.isfinite(got), finite)
        if finite.any():
            _close(got[finite], ref[finite])


@pytest.mark.parametrize("name", N.NIST_NAMES)
def test_chi2_matches_numpy(name):
    p = _problem(name)
    y = np.log(p.y) if p.model.log_response else p.y
    rng = np.random.default_rng(2)
    w = 1.0 / rng.uniform(0.5, 2.0, y.size)
    for b in _param_sets(p, rng):
        with np.errstate(all="ignore"):
            r = (y - p.model.function(p.x, b)) * w
            ref = float(np.sum(r * r))
        got = K.chi2_nist(p.model.kind, p.x, b, y, w)
        if np.isfinite(ref):
            assert got == pytest.approx(ref, rel=RTOL)
        else:
            assert got == np.inf


def test_chi2_values_matches_numpy():
    rng = np.random.default_rng(3)
    y, mu = rng.standard_normal(1000), rng.standard_normal(1000)
    w = rng.uniform(0.1, 3.0, 1000)
    assert K.chi2_values(y, mu, w) == pytest.approx(np.sum(((y - mu) * w) ** 2), rel=RTOL)


def test_non_finite_model_gives_inf():
    y = np.ones(3)
    assert K.chi2_values(y, np.array([1.0, np.nan, 1.0]), y) == np.inf
    assert K.chi2_values(y, np.array([1.0, np.inf, 1.0]), y) == np.inf
    # Bennett5 with a negative base to a fractional power
    assert K.chi2_nist(0, np.array([1.0, 2.0]), np.array([1.0, -10.0, 0.7]), y[:2], y[:2]) == np.inf


def _user_reference(x, p):
    return p[0] * np.exp(-p[1] * x) + p[2]


_user_model = njit(cache=False)(_user_reference)


@njit(cache=False)
def _user_model_wrong_shape(x, p):
    return np.ones(x.size + 1)


def test_chi2_user_compiled_model_matches_numpy():
    rng = np.random.default_rng(4)
    x = np.linspace(0, 5, 200)
    p = np.array([2.0, 0.7, 0.1])
    y = _user_reference(x, p) + 0.01 * rng.standard_normal(x.size)
    w = 1.0 / rng.uniform(0.5, 1.5, x.size)
    ref = np.sum(((y - _user_reference(x, p)) * w) ** 2)
    assert K.chi2_user(_user_model, x, p, y, w) == pytest.approx(ref, rel=RTOL)


def test_chi2_user_wrong_shape_is_an_error():
    x = np.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="not shaped like y"):
        K.chi2_user(_user_model_wrong_shape, x, np.ones(3), np.ones(5), np.ones(5))


def test_wrappers_validate_inputs():
    x = np.linspace(1, 2, 4)
    with pytest.raises(ValueError, match="kind"):
        K.chi2_nist(N_KINDS, x, np.ones(2), np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match="length 4"):
        K.chi2_nist(1, x, np.ones(2), np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="predictors"):
        nist_eval(1, np.ones((4, 3)), np.ones(2))
    with pytest.raises(ValueError, match="w"):
        K.chi2_values(np.ones(4), np.ones(4), np.ones(2))


def test_compile_kernels_runs():
    K.compile_kernels()
