"""Local refinement (every method), failed starts, uncertainties from the Jacobian."""

import numpy as np
import pytest

from hpcopt.errors import ConfigError
from hpcopt.models import nist as N
from hpcopt.models.curve import CurveProblem
from hpcopt.sweep.local import METHODS, refine, refine_many, uncertainties

TRUTH = np.array([2.0, 1.3, 0.3])


def model(x, p):
    return p[0] * np.exp(-p[1] * x) + p[2]


@pytest.fixture
def exact():
    """Noise-free data: every method should find TRUTH."""
    x = np.linspace(0, 4, 30)
    return CurveProblem(x, model(x, TRUTH), model=model, param_names=("a", "k", "c"))


LOWER, UPPER = np.array([0.1, 0.1, -1.0]), np.array([10.0, 10.0, 1.0])
START = np.array([1.0, 0.5, 0.0])


@pytest.mark.parametrize("method, digits", [("least_squares", 8), ("dogbox", 8),
                                            ("nelder-mead", 5), ("lbfgsb", 4), ("powell", 5)])
def test_every_method_finds_the_truth(exact, method, digits):
    r = refine(exact, START, LOWER, UPPER, method)
    assert r.status == "ok", r.message
    np.testing.assert_allclose(r.x, TRUTH, rtol=10.0 ** -digits)
    assert r.chi2 == pytest.approx(exact.chi2(r.x))
    assert r.chi2 < exact.chi2(START) * 1e-6
    assert r.nfev > 1
    assert np.all(r.x >= LOWER) and np.all(r.x <= UPPER)


def test_none_just_evaluates(exact):
    r = refine(exact, START, LOWER, UPPER, "none")
    np.testing.assert_array_equal(r.x, START)
    assert (r.status, r.nfev, r.success) == ("ok", 1, True)
    assert r.chi2 == exact.chi2(START)


def test_methods_list():
    assert set(METHODS) == {"least_squares", "dogbox", "nelder-mead", "lbfgsb", "powell", "none"}
    with pytest.raises(ValueError, match="unknown local method"):
        refine(None, START, LOWER, UPPER, "bfgs")


@pytest.mark.parametrize("method", ["least_squares", "dogbox", "nelder-mead", "lbfgsb",
                                    "powell"])
def test_fixed_parameters_stay_fixed(exact, method):
    lower, upper = LOWER.copy(), UPPER.copy()
    lower[2] = upper[2] = 0.3  # c held at its true value
    r = refine(exact, START, lower, upper, method)
    assert r.x[2] == 0.3
    np.testing.assert_allclose(r.x[:2], TRUTH[:2], rtol=1e-3)


def test_start_outside_bounds_is_clipped(exact):
    r = refine(exact, [50.0, 0.5, 0.0], LOWER, UPPER, "least_squares")
    assert r.status == "ok"
    np.testing.assert_allclose(r.x, TRUTH, rtol=1e-8)


@pytest.mark.parametrize("method", METHODS)
def test_a_start_where_the_model_is_nan_fails(method):
    x = np.linspace(0, 1, 10)
    prob = CurveProblem(x, np.ones(10), model=lambda x, p: np.sqrt(p[0] - 2.0) + 0 * x,
                        param_names=("a",))
    r = refine(prob, [1.0], [0.0], [1.5], method)
    assert r.status == "failed" and r.chi2 == np.inf and not r.success
    assert r.message


def test_a_model_that_raises_fails_the_start_not_the_sweep():
    def broken(x, p):
        raise ZeroDivisionError("boom")

    prob = CurveProblem(np.ones(3), np.ones(3), model=broken, param_names=("a",))
    r = refine(prob, [1.0], [0.0], [2.0], "least_squares")
    assert r.status == "failed" and "ZeroDivisionError: boom" in r.message


def test_usage_errors_propagate():
    prob = CurveProblem(np.ones(3), np.ones(3), model=lambda x, p: np.ones(2), param_names=("a",))
    with pytest.raises(ConfigError):
        refine(prob, [1.0], [0.0], [2.0], "least_squares")


def test_nan_regions_mid_run_never_win():
    """The model is NaN for k > 3: optimizers that stray there keep their best finite point."""
    x = np.linspace(0, 4, 30)
    y = model(x, TRUTH)

    def guarded(x, p):
        return model(x, p) + (np.nan if p[1] > 3.0 else 0.0)

    prob = CurveProblem(x, y, model=guarded, param_names=("a", "k", "c"))
    for method in ("least_squares", "nelder-mead", "lbfgsb", "powell"):
        r = refine(prob, [1.0, 2.9, 0.0], LOWER, UPPER, method)
        assert r.status == "ok" and np.isfinite(r.chi2)
        assert r.x[1] <= 3.0 and r.chi2 == pytest.approx(prob.chi2(r.x))


def test_max_nfev_limits_the_work(exact):
    r = refine(exact, START, LOWER, UPPER, "nelder-mead", max_nfev=10)
    assert r.nfev <= 12 and r.status == "ok" and not r.success


def test_refine_many_picks_the_lowest_chi2(exact):
    starts = np.array([START, [1.0, 9.0, -0.9], TRUTH * 1.01])
    best, results = refine_many(exact, starts, LOWER, UPPER, "none")
    assert best == 2 and len(results) == 3


# --- uncertainties -----------------------------------------------------------------------------

def test_uncertainties_of_a_line_are_the_textbook_ones():
    rng = np.random.default_rng(9)
    x = np.linspace(0, 10, 25)
    y = 1.5 + 0.7 * x + 0.3 * rng.standard_normal(x.size)
    prob = CurveProblem(x, y, model=lambda x, p: p[0] + p[1] * x, param_names=("a", "b"))
    r = refine(prob, [0.0, 0.0], [-10, -10], [10, 10], "least_squares")
    A = np.column_stack([np.ones_like(x), x])
    coef, rss, *_ = np.linalg.lstsq(A, y, rcond=None)
    np.testing.assert_allclose(r.x, coef, rtol=1e-9)
    cov = np.linalg.inv(A.T @ A) * rss[0] / (x.size - 2)
    u = uncertainties(prob, r.x)
    np.testing.assert_allclose(u.covariance, cov, rtol=1e-6)
    np.testing.assert_allclose(u.stderr, np.sqrt(np.diag(cov)), rtol=1e-6)
    assert not u.singular and u.chi2_reduced == pytest.approx(rss[0] / 23, rel=1e-9)


@pytest.mark.parametrize("name", ["Misra1a", "Thurber", "MGH09", "Nelson"])
def test_uncertainties_match_nist_certified_standard_deviations(name):
    p = N.read_nist(N.nist_path(name))
    prob = CurveProblem.from_nist(p)
    u = uncertainties(prob, p.certified)
    np.testing.assert_allclose(u.stderr, p.certified_std, rtol=1e-6)
    assert not u.singular
    # finite differences (no exact Jacobian) agree to their own accuracy
    plain = CurveProblem(prob.x, prob.y, model=p.model.function, param_names=p.param_names)
    assert not plain.has_jacobian
    np.testing.assert_allclose(uncertainties(plain, p.certified).stderr, p.certified_std, rtol=2e-3)


def test_uncertainties_without_exact_jacobian_use_finite_differences(exact):
    x = exact.x
    rng = np.random.default_rng(2)
    y = model(x, TRUTH) + 0.01 * rng.standard_normal(x.size)
    prob = CurveProblem(x, y, model=model, param_names=("a", "k", "c"))
    r = refine(prob, START, LOWER, UPPER, "least_squares")
    u = uncertainties(prob, r.x)
    assert np.all(u.stderr > 0) and np.all(u.stderr < 0.1) and not u.singular
    assert np.allclose(u.covariance, u.covariance.T)


def test_singular_jacobian_is_flagged():
    x = np.linspace(0, 1, 10)
    prob = CurveProblem(x, 2 * x, model=lambda x, p: (p[0] + p[1]) * x, param_names=("a", "b"))
    u = uncertainties(prob, np.array([1.0, 1.0]))
    assert u.singular
    assert np.all(np.isfinite(u.covariance))


def test_fixed_parameters_have_zero_uncertainty(exact):
    u = uncertainties(exact, TRUTH * 1.01, free=[True, True, False])
    assert u.stderr[2] == 0 and np.all(u.covariance[2] == 0) and u.stderr[0] > 0
