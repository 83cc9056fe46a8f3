"""Sampling correctness against exact answers: 2D Ising, Gaussian mixture weights, TI log Z."""

import math

import numpy as np
import pytest
from ising_exact import (enumerate_energies, kaufman_log_z, kaufman_moments,
                         moments_from_histogram)
from temper_helpers import config_from_toml, run_world

from hpcopt.temper import ContinuousProblem, thermodynamic_integration
from hpcopt.temper.problems import GaussianMixtureEnergy
from hpcopt.temper.stats import batch_means, energies_by_slot

Z_TOL = 4.5   # standard errors (batch means, 20 batches)


def test_kaufman_matches_enumeration():
    for L in (3, 4):
        energies, counts = enumerate_energies(L)
        for beta in (0.2, 0.4406868, 0.7):
            log_z = math.log(np.sum(counts * np.exp(-beta * energies)))
            assert kaufman_log_z(beta, L) == pytest.approx(log_z, rel=1e-12)
            mean, var = moments_from_histogram(energies, counts, beta)
            k_mean, k_var = kaufman_moments(beta, L)
            assert k_mean == pytest.approx(mean, rel=1e-8) and k_var == pytest.approx(var, rel=1e-5)


@pytest.mark.parametrize("L,temps", [(4, [1.6, 2.0, 2.3, 2.7, 3.2, 4.0]),
                                     (8, [1.8, 2.1, 2.3, 2.5, 2.8, 3.3])])
def test_ising_energy_and_specific_heat_per_site_are_exact(L, temps):
    burn_in = 200
    cfg = config_from_toml(f"""
        [temper]
        temperatures = {temps}
        exchange_interval = 4
        rounds = 4200
        burn_in = {burn_in}
        thin = 1000
        [problem]
        name = "ising"
        L = {L}
        """)
    records = run_world(cfg, 2024, 0)[0]
    e = energies_by_slot(records)[burn_in:]
    n = L * L
    if L == 4:
        hist = enumerate_energies(4)
        exact = [moments_from_histogram(*hist, 1 / t) for t in temps]
    else:
        exact = [kaufman_moments(1 / t, L) for t in temps]
    for k, t in enumerate(temps):
        mean, err = batch_means(e[:, k] / n)
        heat, heat_err = batch_means(e[:, k], statistic=lambda a, axis: np.var(a, axis=axis) / (t * t * n))
        exact_mean, exact_var = exact[k][0] / n, exact[k][1] / (t * t * n)
        assert err < 0.02 and heat_err < 0.1
        assert abs(mean - exact_mean) < Z_TOL * err, (t, mean, exact_mean, err)
        assert abs(heat - exact_var) < Z_TOL * heat_err, (t, heat, exact_var, heat_err)


MIXTURE = """
[temper]
replicas = {replicas}
t_min = 1.0
t_max = 30.0
exchange_interval = 10
rounds = 2500
burn_in = 100
[problem]
name = "gaussian-mixture"
dim = 1
separation = 10.0
weights = [0.25, 0.75]
step = 1.0
step_scaling = "sqrt-t"
"""


def test_mixture_weights_at_t1_need_the_exchanges():
    cfg = config_from_toml(MIXTURE.format(replicas=6))
    energy = GaussianMixtureEnergy(cfg.problem.centers, cfg.problem.weights, cfg.problem.sigma)
    assert cfg.problem.moves.x0 == (-5.0,)          # every chain starts in the light mode
    samples = run_world(cfg, 5, 0)[1]
    assert samples.size == 2400 and np.all(samples["temperature"] == 1.0)
    in_heavy = np.array([energy.mode_of(x) == 1 for x in samples["state"]], dtype=float)
    frac, err = batch_means(in_heavy)
    assert err < 0.05 and abs(frac - 0.75) < Z_TOL * err, (frac, err)
    # within a mode the T = 1 chain has the right spread (sigma = 1 about the centre)
    x = samples["state"][:, 0]
    spread = np.std(x - np.where(in_heavy > 0, 5.0, -5.0))
    assert spread == pytest.approx(1.0, abs=0.1)

    # a plain Metropolis chain (one replica at T = 1) from the same start stays in its mode
    plain = config_from_toml(MIXTURE.format(replicas=1).replace("t_max = 30.0\n", ""))
    stuck = run_world(plain, 5, 0)[1]
    assert stuck.size == 2400
    assert np.mean([energy.mode_of(x) == 1 for x in stuck["state"]]) < 0.05


def gaussian_energy(x, inv_var=np.array([1.0, 0.25, 4.0])):
    return 0.5 * float(np.sum(inv_var * x * x))


def test_thermodynamic_integration_gives_the_gaussian_log_z_ratio():
    temps = np.geomspace(1.0, 100.0, 8)
    burn_in = 100
    cfg = config_from_toml(f"""
        [temper]
        temperatures = {temps.tolist()}
        exchange_interval = 10
        rounds = 2100
        burn_in = {burn_in}
        thin = 1000
        [problem]
        name = "gaussian-mixture"
        centers = [[0.0, 0.0, 0.0]]
        """)
    # E = sum x_i^2 / (2 sigma_i^2), sigma = (1, 2, 0.5): Z(beta) = prod sigma_i sqrt(2 pi / beta)
    problem = ContinuousProblem("gauss", gaussian_energy, x0=[0.0, 0.0, 0.0],
                                step=[1.0, 2.0, 0.5], step_scaling="sqrt-t")
    records = run_world(cfg, 13, 0, problem=problem)[0]
    e = energies_by_slot(records)[burn_in:]
    means, errs = batch_means(e)
    exact = 1.5 * math.log(1 / temps[-1])      # log Z(1) - log Z(beta_hot) = (d/2) ln(beta_hot)
    value, err = thermodynamic_integration(temps, means, errs)
    assert err < 0.15
    assert abs(value - exact) < Z_TOL * err, (value, exact, err)
    summary = run_world(cfg, 13, 0, problem=problem)[2]
    for method in ("stepping_stone", "thermodynamic_integration"):
        value, err = summary.log_z[method]
        assert 0 < err < 0.15 and abs(value - exact) < Z_TOL * err, (method, value, exact, err)
    # and every temperature has <E> = d T / 2
    assert np.all(np.abs(means - 1.5 * temps) < Z_TOL * errs)


def test_thermodynamic_integration_is_exact_for_exact_gaussian_energies():
    temps = np.geomspace(0.5, 40.0, 5)
    value, _ = thermodynamic_integration(temps, 2.0 * temps)       # d = 4: <E> = 2 T
    assert value == pytest.approx(2.0 * math.log(0.5 / 40.0), rel=1e-12)
    with pytest.raises(ValueError):
        thermodynamic_integration([1.0], [1.0])


def exact_ising_log_z_ratio(L, t_min, t_max):
    energies, counts = enumerate_energies(L)
    log_z = [math.log(np.sum(counts * np.exp(-energies / t))) for t in (t_min, t_max)]
    return log_z[0] - log_z[1]


ISING_EXAMPLE = """
[temper]
replicas = 6
t_min = 1.0
t_max = 20.0
exchange_interval = 10
rounds = 3100
burn_in = 100
thin = 1000
[problem]
name = "ising"
L = 4
"""


def test_stepping_stones_give_the_exact_ising_log_z_ratio_and_the_trapezoid_does_not():
    """Issue 15.5: on the example's ladder (6 temperatures, 1 to 20) the trapezoid rule gave
    22.62 for log Z(T_min) - log Z(T_max) against the exact 21.57 of the 4x4 lattice."""
    cfg = config_from_toml(ISING_EXAMPLE)
    summary = run_world(cfg, 7, 0)[2]
    exact = exact_ising_log_z_ratio(4, 1.0, 20.0)
    assert exact == pytest.approx(21.57, abs=0.01)
    value, err = summary.log_z["stepping_stone"]
    assert 0 < err < 0.1
    assert abs(value - exact) < 3 * err, (value, exact, err)
    ti, ti_err = summary.log_z["thermodynamic_integration"]
    assert summary.log_z_ratio == ti and 0 < ti_err < 0.1
    assert ti - exact > 0.5 and ti - exact > 5 * ti_err    # the quadrature bias, not noise


def test_the_running_log_z_sums_agree_with_a_recount_from_the_records():
    from hpcopt.temper.stats import MAX_BATCHES, stepping_stones
    burn_in = 100
    cfg = config_from_toml(ISING_EXAMPLE.replace("rounds = 3100", "rounds = 1337"))
    records, _, summary, _, _ = run_world(cfg, 3, 2)
    e = energies_by_slot(records)[burn_in:]
    temps = summary.temperatures
    value, err = summary.log_z["stepping_stone"]
    assert value == pytest.approx(stepping_stones(e, temps), rel=1e-12)
    # batches: the shortest power-of-two length that needs at most MAX_BATCHES of them
    n = len(e)
    size = 1
    while -(-n // size) > MAX_BATCHES:
        size *= 2
    full = n // size
    assert MAX_BATCHES // 2 <= full <= MAX_BATCHES
    per_batch = [stepping_stones(e[b * size:(b + 1) * size], temps) for b in range(full)]
    assert err == pytest.approx(np.std(per_batch, ddof=1) / math.sqrt(full), rel=1e-9)
    ti, ti_err = summary.log_z["thermodynamic_integration"]
    assert ti == pytest.approx(thermodynamic_integration(temps, e.mean(axis=0))[0], rel=1e-12)
    per_batch = [thermodynamic_integration(temps, e[b * size:(b + 1) * size].mean(axis=0))[0]
                 for b in range(full)]
    assert ti_err == pytest.approx(np.std(per_batch, ddof=1) / math.sqrt(full), rel=1e-9)


def test_log_z_estimates_are_nan_without_a_ladder_or_rounds():
    from hpcopt.temper.stats import LogZAccumulator
    acc = LogZAccumulator(3)
    assert all(math.isnan(v) for pair in acc.estimates(np.array([1.0, 2.0, 4.0])).values()
               for v in pair)
    acc.add(np.array([-3.0, -1.0, 0.5]), 1.0 / np.array([1.0, 2.0, 4.0]))
    est = acc.estimates(np.array([1.0, 2.0, 4.0]))
    # one round: each stone is exp(-(dbeta) E_hot) exactly, no error yet
    assert est["stepping_stone"][0] == pytest.approx(-(1 - 0.5) * -1.0 - (0.5 - 0.25) * 0.5)
    assert math.isnan(est["stepping_stone"][1])
    one = LogZAccumulator(1)
    assert math.isnan(one.estimates(np.array([1.0]))["stepping_stone"][0])
