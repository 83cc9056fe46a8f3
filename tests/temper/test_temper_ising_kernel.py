"""The compiled Ising sweep kernel against a plain-Python reference."""

import itertools

import numpy as np
import pytest

from hpcopt.kernels import ising


def reference_sweeps(spins, beta, n_sweeps, rng, energy, best, best_energy):
    """Row-major single-spin-flip Metropolis, written plainly (no numba)."""
    n = spins.shape[0]
    u = rng.random(n_sweeps * n * n)
    k = accepted = 0
    for _ in range(n_sweeps):
        for i in range(n):
            for j in range(n):
                h = (int(spins[(i - 1) % n, j]) + int(spins[(i + 1) % n, j])
                     + int(spins[i, (j - 1) % n]) + int(spins[i, (j + 1) % n]))
                de = 2 * int(spins[i, j]) * h
                if de <= 0 or u[k] < np.exp(-beta * de):
                    spins[i, j] = -spins[i, j]
                    energy += de
                    accepted += 1
                    if energy < best_energy:
                        best_energy = energy
                        best[...] = spins
                k += 1
    return energy, best_energy, accepted


def brute_energy(spins):
    n = spins.shape[0]
    return -sum(int(spins[i, j]) * (int(spins[(i + 1) % n, j]) + int(spins[i, (j + 1) % n]))
                for i in range(n) for j in range(n))


def random_lattice(rng, L):
    return (2 * rng.integers(0, 2, size=(L, L)) - 1).astype(np.int8)


@pytest.mark.parametrize("L,beta", [(2, 0.3), (3, 0.44), (4, 0.2), (8, 0.6), (5, 0.0)])
def test_kernel_matches_reference(L, beta):
    rng = np.random.default_rng(L)
    spins = random_lattice(rng, L)
    e = ising.energy(spins)
    a, b = spins.copy(), spins.copy()
    best_a, best_b = spins.copy(), spins.copy()
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    got = ising.metropolis_sweeps(a, beta, 13, rng_a, e, best_a, e)
    want = reference_sweeps(b, beta, 13, rng_b, e, best_b, e)
    assert got == want
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(best_a, best_b)
    assert got[0] == ising.energy(a) and got[1] == ising.energy(best_a)
    assert rng_a.bit_generator.state == rng_b.bit_generator.state


def test_energy_and_magnetisation_match_brute_force():
    rng = np.random.default_rng(0)
    for L in (2, 3, 4, 7):
        s = random_lattice(rng, L)
        assert ising.energy(s) == brute_energy(s)
        assert ising.magnetisation(s) == int(s.astype(int).sum())
    assert ising.energy(np.ones((6, 6), np.int8)) == -72


def test_chunked_draws_give_the_same_stream(monkeypatch):
    rng = np.random.default_rng(1)
    s0 = random_lattice(rng, 6)
    e = ising.energy(s0)
    runs = []
    for chunk in (ising._CHUNK, 36 * 3):  # one call, or calls of 3 sweeps
        monkeypatch.setattr(ising, "_CHUNK", chunk)
        s, best = s0.copy(), s0.copy()
        out = ising.metropolis_sweeps(s, 0.4, 10, np.random.default_rng(5), e, best, e)
        runs.append((out, s.copy(), best.copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_wrapper_refuses_bad_input():
    rng = np.random.default_rng(0)
    ok = np.ones((4, 4), np.int8)
    for bad in (np.ones((4, 4), np.int64), np.ones((4, 5), np.int8), np.ones((4, 4), np.int8)[:, ::2]):
        with pytest.raises(ValueError):
            ising.metropolis_sweeps(bad, 0.5, 1, rng, 0, ok.copy(), 0)
    with pytest.raises(ValueError):
        ising.metropolis_sweeps(ok.copy(), -1.0, 1, rng, -32, ok.copy(), -32)


def test_zero_temperature_only_descends():
    rng = np.random.default_rng(3)
    s = random_lattice(rng, 8)
    e0 = ising.energy(s)
    e, best, _ = ising.metropolis_sweeps(s, 1e6, 5, rng, e0, s.copy(), e0)
    assert e <= e0 and best == e
    # every remaining flip would raise the energy or keep it (a local minimum of single flips)
    for i, j in itertools.product(range(8), range(8)):
        t = s.copy()
        t[i, j] = -t[i, j]
        assert ising.energy(t) >= e
