"""Exact finite-lattice 2D Ising thermodynamics (J = 1, periodic, L x L) for the tests.

* enumeration of all 2^(L*L) states (L <= 4): the energy histogram;
* Kaufman's closed form of the partition function (Phys. Rev. 76, 1232 (1949), in the
  form of Beale, PRL 76, 78 (1996)), for any L; checked against enumeration in the tests.
"""

from __future__ import annotations

import math

import numpy as np


def enumerate_energies(L: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct energies, number of states with each energy)."""
    n = L * L
    codes = np.arange(2 ** n, dtype=np.int64)
    bits = ((codes[:, None] >> np.arange(n)) & 1).astype(np.int8)
    s = (2 * bits - 1).reshape(-1, L, L).astype(np.int64)
    e = -(s * (np.roll(s, 1, axis=1) + np.roll(s, 1, axis=2))).sum(axis=(1, 2))
    return np.unique(e, return_counts=True)


def moments_from_histogram(energies, counts, beta):
    """(<E>, var E) from a density of states."""
    logw = np.log(counts) - beta * energies
    w = np.exp(logw - logw.max())
    w /= w.sum()
    mean = float(np.sum(w * energies))
    return mean, float(np.sum(w * (energies - mean) ** 2))


def kaufman_log_z(beta: float, L: int) -> float:
    """ln Z of the L x L periodic lattice."""
    K = beta
    k = np.arange(2 * L)
    c = math.cosh(2 * K) / math.tanh(2 * K) - np.cos(np.pi * k / L)
    gamma = np.arccosh(np.maximum(c, 1.0))
    gamma[0] = 2 * K + math.log(math.tanh(K))
    odd, even = gamma[1::2], gamma[0::2]
    half = L / 2
    terms = [np.prod(2 * np.cosh(half * odd)), np.prod(2 * np.sinh(half * odd)),
             np.prod(2 * np.cosh(half * even)), np.prod(2 * np.sinh(half * even))]
    return math.log(0.5) + (L * L / 2) * math.log(2 * math.sinh(2 * K)) + math.log(sum(terms))


def kaufman_moments(beta: float, L: int, h: float = 1e-4) -> tuple[float, float]:
    """(<E>, var E) = (-d lnZ/dbeta, d2 lnZ/dbeta2) by central differences."""
    f = [kaufman_log_z(beta + i * h, L) for i in (-2, -1, 0, 1, 2)]
    d1 = (f[0] - 8 * f[1] + 8 * f[3] - f[4]) / (12 * h)
    d2 = (-f[0] + 16 * f[1] - 30 * f[2] + 16 * f[3] - f[4]) / (12 * h * h)
    return -d1, d2
