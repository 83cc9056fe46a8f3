"""2D Ising model (L x L, periodic, J = 1, no field): energy and Metropolis sweeps.

A sweep visits the sites in row-major order and attempts one single-spin flip at
each, accepted with probability min(1, exp(-beta * dE)).  Sequential sweeps keep
the Boltzmann distribution stationary (every flip satisfies detailed balance).

The uniform numbers are drawn by the caller's numpy Generator, one per attempted
flip, so the compiled kernel and its plain-Python reference (tests) consume the
same stream and give identical lattices, and a replica's generator state is the
only random state there is to checkpoint.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: uniforms drawn per kernel call at most (bounds the temporary array for big lattices)
_CHUNK = 1 << 20


@njit(cache=True)
def _metropolis_sweeps(spins, uniforms, boltzmann, energy, best_spins, best_energy):
    """Sweeps over `spins` (int8, L x L) in place, one uniform per attempted flip.

    boltzmann[0] = exp(-4 beta), boltzmann[1] = exp(-8 beta) (the only uphill moves).
    Returns (energy, best_energy, accepted flips); best_spins gets each new minimum.
    """
    n = spins.shape[0]
    accepted = 0
    k = 0
    for _ in range(uniforms.shape[0] // (n * n)):
        for i in range(n):
            up = i - 1 if i > 0 else n - 1
            down = i + 1 if i < n - 1 else 0
            for j in range(n):
                left = j - 1 if j > 0 else n - 1
                right = j + 1 if j < n - 1 else 0
                s = np.int64(spins[i, j])
                field = (np.int64(spins[up, j]) + np.int64(spins[down, j])
                         + np.int64(spins[i, left]) + np.int64(spins[i, right]))
                de = 2 * s * field
                u = uniforms[k]
                k += 1
                if de <= 0 or u < boltzmann[de // 4 - 1]:
                    spins[i, j] = -spins[i, j]
                    energy += de
                    accepted += 1
                    if energy < best_energy:
                        best_energy = energy
                        best_spins[:, :] = spins
    return energy, best_energy, accepted


def _check_lattice(spins: np.ndarray, what: str = "spins") -> None:
    if (not isinstance(spins, np.ndarray) or spins.dtype != np.int8 or spins.ndim != 2
            or spins.shape[0] != spins.shape[1] or spins.shape[0] < 2
            or not spins.flags.c_contiguous):
        raise ValueError(f"{what} must be a C-contiguous square int8 array with L >= 2")


def energy(spins: np.ndarray) -> int:
    """E = -sum over nearest-neighbour bonds of s_i s_j (each bond once, periodic)."""
    s = spins.astype(np.int64)
    return int(-(s * (np.roll(s, 1, axis=0) + np.roll(s, 1, axis=1))).sum())


def magnetisation(spins: np.ndarray) -> int:
    """M = sum of the spins."""
    return int(spins.sum(dtype=np.int64))


def levels(L: int) -> dict[str, tuple[int, int, int]]:
    """(lowest, highest, spacing) of the values E and M can take on an L x L lattice.

    M = N - 2 (spins down) moves in steps of 2; a flip changes E by 2 s (sum of the four
    neighbours), a multiple of 4 (of 8 for L = 2, where up/down and left/right
    neighbours coincide).  Not every level in between occurs (E = -2N + 4 does not).
    """
    n = L * L
    return {"energy": (-2 * n, 2 * n, 4 if L > 2 else 8), "magnetisation": (-n, n, 2)}


def boltzmann_factors(beta: float) -> np.ndarray:
    """[exp(-4 beta), exp(-8 beta)]: acceptance of the two uphill flips."""
    return np.exp(-float(beta) * np.array([4.0, 8.0]))


def metropolis_sweeps(spins: np.ndarray, beta: float, n_sweeps: int, rng: np.random.Generator,
                      energy: int, best_spins: np.ndarray, best_energy: int) -> tuple[int, int, int]:
    """Run `n_sweeps` sweeps in place; return (energy, best energy, accepted flips).

    `energy` must be the current energy of `spins`; `best_spins` is updated in
    place whenever a new lowest energy is reached.
    """
    _check_lattice(spins)
    _check_lattice(best_spins, "best_spins")
    if best_spins.shape != spins.shape:
        raise ValueError("best_spins must have the shape of spins")
    if n_sweeps < 0 or not np.isfinite(beta) or beta < 0:
        raise ValueError(f"need n_sweeps >= 0 and a finite beta >= 0, got {n_sweeps}, {beta}")
    sites = spins.size
    weights = boltzmann_factors(beta)
    energy, best_energy, accepted = int(energy), int(best_energy), 0
    per_chunk = max(1, _CHUNK // sites)
    done = 0
    while done < n_sweeps:  # the same stream whatever the chunking: doubles are drawn in order
        m = min(per_chunk, n_sweeps - done)
        uniforms = rng.random(m * sites)
        energy, best_energy, acc = _metropolis_sweeps(spins, uniforms, weights, np.int64(energy),
                                                      best_spins, np.int64(best_energy))
        energy, best_energy, accepted = int(energy), int(best_energy), accepted + int(acc)
        done += m
    return energy, best_energy, accepted


def warm_up() -> None:
    """Compile (or load from numba's disk cache) the sweep kernel on a 2x2 lattice."""
    spins = np.ones((2, 2), dtype=np.int8)
    metropolis_sweeps(spins, 1.0, 1, np.random.default_rng(0), energy(spins), spins.copy(),
                      energy(spins))
