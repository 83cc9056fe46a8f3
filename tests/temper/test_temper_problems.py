"""Built-in problems and the fit posterior (with a stand-in model registry)."""

import math
import sys
import types

import numpy as np
import pytest
from temper_helpers import config_from_toml, run_world

from hpcopt.errors import ConfigError
from hpcopt.temper import ContinuousProblem, IsingProblem, make_problem
from hpcopt.temper.problems import EnergyError, GaussianMixtureEnergy, RastriginEnergy
from hpcopt.temper.replica import Replica
from hpcopt.temper.stats import batch_means

TEMPER = "[temper]\nreplicas = 3\nt_max = 4.0\nrounds = 5\n"


def test_rastrigin_starts_inside_its_box_with_its_own_stream():
    cfg = config_from_toml(TEMPER + "[problem]\nname = 'rastrigin'\ndim = 3\n")
    p = make_problem(cfg.problem)
    assert p.energy(np.zeros(3)) == 0.0
    assert p.energy(np.ones(3)) == pytest.approx(3.0)          # cos(2 pi) = 1: x^2 only
    starts = [Replica(i, p, seed=1).state for i in range(3)]
    assert all(np.all(np.abs(s) <= 5.12) for s in starts)
    assert len({tuple(s) for s in starts}) == 3
    np.testing.assert_array_equal(Replica(2, p, seed=1).state, starts[2])
    assert RastriginEnergy(10.0)(np.array([0.5])) == pytest.approx(20.25)


def test_gaussian_mixture_is_normalised():
    e = GaussianMixtureEnergy([[-3.0], [4.0]], [0.3, 0.7], 0.8)
    x = np.linspace(-12, 14, 20001)
    density = np.exp([-e(np.array([v])) for v in x])
    assert np.trapezoid(density, x) == pytest.approx(1.0, rel=1e-9)
    assert e.mode_of(np.array([-2.0])) == 0 and e.mode_of(np.array([1.0])) == 1


def test_ising_problem():
    cfg = config_from_toml(TEMPER + "[problem]\nname = 'ising'\nL = 5\n")
    p = make_problem(cfg.problem)
    assert isinstance(p, IsingProblem) and p.state_shape == (5, 5)
    s = Replica(0, p, seed=0).state
    assert s.dtype == np.int8 and set(np.unique(s)) <= {-1, 1}
    assert p.observables(np.ones((5, 5), np.int8)).tolist() == [25.0]


def test_energies_that_are_not_numbers_are_reported():
    p = ContinuousProblem("bad", lambda x: "abc", x0=[0.0])
    with pytest.raises(EnergyError, match="must return a number"):
        p.energy(np.zeros(1))
    assert ContinuousProblem("nan", lambda x: math.nan, x0=[0.0]).energy(np.zeros(1)) == math.inf
    with pytest.raises(ValueError):
        ContinuousProblem("box", lambda x: 0.0, dim=2)        # random start needs finite bounds


@pytest.mark.parametrize("exc", [SystemExit(0), SystemExit(None), SystemExit(3),
                                 KeyboardInterrupt(), ZeroDivisionError("float division")])
def test_an_energy_that_exits_or_interrupts_is_an_error_naming_the_replica(exc):
    """BUG (issue 13.7): SystemExit from an energy became the rank's exit (SystemExit(0):
    the other ranks waited forever); now it is an EnergyError naming replica and round."""
    calls = []

    def energy(x):
        calls.append(1)
        if len(calls) > 3:
            raise exc
        return float(x @ x)

    rep = Replica(2, ContinuousProblem("user:energy", energy, x0=[0.0, 0.0], step=0.5), seed=1)
    with pytest.raises(EnergyError) as info:
        rep.advance(10, 0.5, round_no=7)
    message = str(info.value)
    assert message.startswith("replica 2 at T = 2, round 7: the energy 'user:energy' raised ")
    assert type(exc).__name__ in message and info.value.__cause__ is exc


def test_an_exiting_energy_at_the_start_point_is_a_config_error(tmp_path):
    (tmp_path / "exiting_energy_mod.py").write_text("def energy(x):\n    raise SystemExit(0)\n")
    cfg = config_from_toml(TEMPER + "[problem]\nfunction = 'exiting_energy_mod:energy'\n"
                           "x0 = [1.0]\nstep = 1.0\n", "pt.toml", tmp_path)
    with pytest.raises(ConfigError, match=r"problem.x0: at the start point the energy "
                                          r"'exiting_energy_mod:energy' raised SystemExit\(0\)"):
        make_problem(cfg.problem, "pt.toml")


class LinearFit:
    """A FitProblem stand-in: y = a + b x with sigma = 1."""

    param_names = ("a", "b")
    n_nuisance = 0

    def __init__(self):
        rng = np.random.default_rng(0)
        self.x = np.linspace(-1, 1, 20)
        self.y = 1.0 + 2.0 * self.x + rng.normal(size=20)
        self.n_points = 20

    def residuals(self, p):
        return self.y - (p[0] + p[1] * self.x)

    def chi2(self, p):
        return float(np.sum(self.residuals(p) ** 2))

    def model(self, p):
        return p[0] + p[1] * self.x


@pytest.fixture
def fake_registry(monkeypatch):
    module = types.ModuleType("hpcopt.models.registry")
    calls = []

    def build_problem(model, data_path, **kwargs):
        calls.append((model, data_path))
        return LinearFit()

    module.build_problem = build_problem
    monkeypatch.setitem(sys.modules, "hpcopt.models.registry", module)
    return calls


def test_fit_posterior_has_the_least_squares_mean_and_covariance(fake_registry, tmp_path):
    cfg = config_from_toml("""
        [temper]
        temperatures = [1.0, 2.0, 4.0]
        exchange_interval = 10
        rounds = 3100
        burn_in = 100
        [problem]
        model = "user:line"
        data = "line.csv"
        x0 = [0.0, 0.0]
        step = [0.3, 0.5]
        """, "fit.toml", tmp_path)
    problem = make_problem(cfg.problem, cfg.source)
    assert fake_registry == [("user:line", str(tmp_path / "line.csv"))]
    assert problem.param_names == ("a", "b")
    fit = problem.fit
    assert problem.energy(np.array([1.0, 2.0])) == 0.5 * fit.chi2(np.array([1.0, 2.0]))
    samples = run_world(cfg, 3, 0, problem=problem)[1]["state"]
    design = np.column_stack([np.ones(20), fit.x])
    cov = np.linalg.inv(design.T @ design)
    best = cov @ design.T @ fit.y
    mean, err = batch_means(samples)
    assert np.all(np.abs(mean - best) < 4.5 * err), (mean, best, err)
    np.testing.assert_allclose(np.cov(samples.T), cov, rtol=0.2, atol=0.2 * cov[0, 0])


def test_fit_parameter_count_must_match_x0(fake_registry):
    cfg = config_from_toml(TEMPER + "[problem]\nmodel = 'm'\ndata = 'd.dat'\nx0 = [0.0]\nstep = 1.0\n")
    with pytest.raises(ConfigError, match=r"pt.toml: problem.x0: .*2 parameters"):
        make_problem(cfg.problem, cfg.source)
