"""One replica: its state, energy, random stream, best state seen, and its Metropolis moves.

A replica's generator derives from (seed, replica id) only (hpcopt.seeding,
domain REPLICA), so the replica draws the same numbers whichever rank advances
it.  Its whole random state is six uint64 words (PCG64), stored in checkpoints
as plain numbers (no pickle) so a resumed campaign continues bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from .. import seeding
from ..kernels import ising
from .problems import ContinuousProblem, EnergyError, IsingProblem, Problem

RNG_WORDS = 6
_MASK64 = (1 << 64) - 1


def rng_to_words(rng: np.random.Generator) -> np.ndarray:
    """PCG64 state as uint64 [state_hi, state_lo, inc_hi, inc_lo, has_uint32, uinteger]."""
    st = rng.bit_generator.state
    if st["bit_generator"] != "PCG64":
        raise ValueError(f"only PCG64 generators are checkpointed, got {st['bit_generator']}")
    s, inc = st["state"]["state"], st["state"]["inc"]
    return np.array([s >> 64, s & _MASK64, inc >> 64, inc & _MASK64, st["has_uint32"],
                     st["uinteger"]], dtype=np.uint64)


def rng_from_words(words) -> np.random.Generator:
    """Inverse of :func:`rng_to_words`."""
    w = [int(v) for v in np.asarray(words, dtype=np.uint64).reshape(-1)]
    if len(w) != RNG_WORDS:
        raise ValueError(f"expected {RNG_WORDS} generator words, got {len(w)}")
    bitgen = np.random.PCG64()
    bitgen.state = {"bit_generator": "PCG64",
                    "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
                    "has_uint32": w[4], "uinteger": w[5]}
    return np.random.Generator(bitgen)


class Replica:
    """A Markov chain whose temperature is set by the campaign at every advance."""

    def __init__(self, replica_id: int, problem: Problem, seed: int):
        self.id = int(replica_id)
        self.problem = problem
        self.rng = seeding.task_rng(seed, self.id, seeding.REPLICA)
        self.state = problem.initial_state(self.rng)
        try:
            self.energy = problem.energy(self.state)
        except EnergyError as exc:
            raise EnergyError(f"replica {self.id}, start state: {exc}") from exc.__cause__
        if not math.isfinite(self.energy):
            raise ValueError(f"replica {self.id}: the energy of the start state is not finite")
        self.best_state = self.state.copy()
        self.best_energy = self.energy
        self.best_round = -1          # -1: the start state
        self.n_accepted = 0           # moves (Ising: spin flips) since the start
        self.n_proposed = 0
        self.last_acceptance = math.nan   # move acceptance of the last advance

    def advance(self, n_steps: int, beta: float, step_factor: float = 1.0, round_no: int = 0) -> None:
        """`n_steps` Metropolis steps at inverse temperature `beta` (Ising: lattice sweeps).

        `step_factor` multiplies the proposal scales (continuous problems only).
        """
        try:
            self._advance(n_steps, beta, step_factor, round_no)
        except EnergyError as exc:
            raise EnergyError(f"replica {self.id} at T = {1.0 / beta:.6g}, round {round_no}: "
                              f"{exc}") from exc.__cause__

    def _advance(self, n_steps: int, beta: float, step_factor: float, round_no: int) -> None:
        before = self.best_energy
        if isinstance(self.problem, IsingProblem):
            e, best, acc = ising.metropolis_sweeps(self.state, beta, n_steps, self.rng,
                                                   int(self.energy), self.best_state,
                                                   int(self.best_energy))
            self.energy, self.best_energy = float(e), float(best)
            proposed = n_steps * self.problem.n_sites
        else:
            acc = self._random_walk(n_steps, beta, step_factor)
            proposed = n_steps
        self.n_accepted += acc
        self.n_proposed += proposed
        self.last_acceptance = acc / proposed if proposed else math.nan
        if self.best_energy < before:
            self.best_round = int(round_no)

    def _random_walk(self, n_steps: int, beta: float, step_factor: float) -> int:
        """Gaussian random-walk Metropolis; proposals outside the bounds are folded or rejected."""
        p: ContinuousProblem = self.problem
        # all random numbers of the advance at once: the stream order is fixed by n_steps
        noise = self.rng.standard_normal((n_steps, p.dim)) * (p.step * step_factor)
        with np.errstate(divide="ignore"):
            log_u = np.log(self.rng.random(n_steps))
        x, e = self.state, self.energy
        best_x, best_e = self.best_state, self.best_energy
        reflect = p.bounded and p.boundary == "reflect"
        reject = p.bounded and p.boundary == "reject"
        accepted = 0
        for k in range(n_steps):
            y = x + noise[k]
            if reflect:
                y = p.fold(y)
            elif reject and np.any((y < p.lower) | (y > p.upper)):
                continue
            ey = p.energy(y)
            if ey == math.inf or not log_u[k] < -beta * (ey - e):
                continue
            x, e = y, ey
            accepted += 1
            if e < best_e:
                best_x, best_e = x, e   # x is never modified in place: no copy needed
        self.state, self.energy = x, e
        self.best_state, self.best_energy = best_x, best_e
        return accepted

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint(self) -> dict[str, np.ndarray]:
        """Everything needed to continue bit for bit, as numpy arrays."""
        return {"state": self.state.copy(), "energy": np.float64(self.energy),
                "best_state": np.array(self.best_state, copy=True),
                "best_energy": np.float64(self.best_energy), "best_round": np.int64(self.best_round),
                "moves": np.array([self.n_accepted, self.n_proposed], dtype=np.int64),
                "rng": rng_to_words(self.rng)}

    def restore(self, data: dict) -> None:
        """Continue from :meth:`checkpoint` output (one replica's rows)."""
        shape, dtype = self.problem.state_shape, self.problem.state_dtype
        state = np.array(data["state"], dtype=dtype)
        best = np.array(data["best_state"], dtype=dtype)
        if state.shape != shape or best.shape != shape:
            raise ValueError(f"replica {self.id}: checkpoint state has shape {state.shape}, "
                             f"the problem {shape}")
        self.state, self.best_state = np.ascontiguousarray(state), np.ascontiguousarray(best)
        self.energy = float(data["energy"])
        self.best_energy = float(data["best_energy"])
        self.best_round = int(data["best_round"])
        self.n_accepted, self.n_proposed = (int(v) for v in np.asarray(data["moves"]))
        self.rng = rng_from_words(data["rng"])
        self.last_acceptance = math.nan
