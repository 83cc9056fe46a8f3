"""CurveProblem: residuals, chi2 (compiled and numpy paths agree), model, Jacobian."""

import warnings

import numpy as np
import numba
import pytest
from numba import njit

from hpcopt.errors import ConfigError, DataError
from hpcopt.models import nist as N
from hpcopt import nist_accuracy as A
from hpcopt.models.base import FitProblem, reduced_chi2
from hpcopt.models.curve import CurveProblem


def decay(x, p):
    return p[0] * np.exp(-p[1] * x)


decay_jit = njit(cache=False)(decay)


@njit(cache=False)
def scalar_only(x, p):  # returns a float, not an array like y
    return p[0] * x.item()


@pytest.fixture
def data():
    rng = np.random.default_rng(5)
    x = np.linspace(0, 3, 40)
    sigma = rng.uniform(0.05, 0.2, x.size)
    y = decay(x, [2.0, 1.3]) + sigma * rng.standard_normal(x.size)
    return x, y, sigma


@pytest.mark.parametrize("model", [decay, decay_jit], ids=["python", "numba"])
def test_curve_problem_is_a_fit_problem(model, data):
    x, y, sigma = data
    prob = CurveProblem(x, y, sigma, model=model, param_names=("a", "k"))
    assert isinstance(prob, FitProblem)
    assert prob.n_points == 40 and prob.n_nuisance == 0
    p = np.array([1.9, 1.2])
    r = prob.residuals(p)
    np.testing.assert_allclose(r, (y - decay(x, p)) / sigma, rtol=1e-12)
    assert prob.chi2(p) == pytest.approx(np.sum(r * r), rel=1e-12)
    np.testing.assert_allclose(prob.model(p), decay(x, p), rtol=1e-12)
    assert reduced_chi2(prob.chi2(p), prob) == pytest.approx(prob.chi2(p) / 38)
    assert not prob.has_jacobian


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no dispatchers without the JIT")
def test_numba_user_model_runs_in_the_compiled_loop(data):
    x, y, sigma = data
    prob = CurveProblem(x, y, sigma, model=decay_jit, param_names=("a", "k"))
    assert prob._compiled_user
    prob.chi2(np.array([1.0, 1.0]))
    assert prob._compiled_user  # still compiled after the first call (no fallback)


def test_numba_model_returning_a_scalar_is_a_config_error(data):
    x, y, _ = data
    prob = CurveProblem(x[:1], y[:1], model=scalar_only, param_names=("a",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the compiled loop cannot take a scalar: numpy path
        with pytest.raises(ConfigError, match="shape") as info:
            prob.chi2(np.array([2.0]))
    assert info.value.key == "model.name"


def test_no_sigma_means_unit_weights(data):
    x, y, _ = data
    prob = CurveProblem(x, y, model=decay, param_names=("a", "k"))
    p = np.array([2.0, 1.3])
    assert prob.chi2(p) == pytest.approx(np.sum((y - decay(x, p)) ** 2), rel=1e-12)


def test_non_finite_model_gives_inf_chi2(data):
    x, y, _ = data
    prob = CurveProblem(x, y, model=lambda x, p: np.log(p[0] - x), param_names=("a",))
    assert prob.chi2(np.array([1.0])) == np.inf
    assert not np.all(np.isfinite(prob.residuals(np.array([1.0]))))


def test_wrongly_shaped_model_output_is_a_config_error(data):
    x, y, _ = data
    prob = CurveProblem(x, y, model=lambda x, p: np.ones(3), param_names=("a",))
    with pytest.raises(ConfigError, match="shape") as info:
        prob.chi2(np.array([1.0]))
    assert info.value.key == "model.name"


@pytest.mark.parametrize("name", ["Misra1a", "Nelson", "ENSO", "Thurber"])
def test_nist_problem_paths_agree(name):
    p = N.read_nist(N.nist_path(name))
    prob = CurveProblem.from_nist(p)
    assert prob.has_jacobian and prob.param_names == p.param_names
    r = prob.residuals(p.certified)
    assert prob.chi2(p.certified) == pytest.approx(np.sum(r * r), rel=1e-12)
    assert A.lre(prob.chi2(p.certified), p.certified_rss) > 9
    J = prob.jacobian(p.certified)
    np.testing.assert_allclose(J, -p.model.jacobian(p.x, p.certified), rtol=1e-15)


def test_nelson_fits_log_y():
    p = N.read_nist(N.nist_path("Nelson"))
    prob = CurveProblem.from_nist(p)
    np.testing.assert_allclose(prob.y, np.log(p.y))
    with pytest.raises(DataError, match="y must be > 0"):
        CurveProblem.for_nist_model("Nelson", p.x, -p.y)


def test_mismatched_x_and_y():
    with pytest.raises(ValueError, match="do not match"):
        CurveProblem(np.ones(3), np.ones(4), model=decay, param_names=("a", "k"))
    with pytest.raises(ValueError, match="parameters"):
        CurveProblem(np.ones(3), np.ones(3), model=N.get_model("Misra1a"), param_names=("a",))
