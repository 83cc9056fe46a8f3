"""Replica exchange between neighbouring temperatures (temperatures move, states stay).

In round r the pairs of slots (k, k+1) with k = r mod 2, r mod 2 + 2, ... are
attempted: even pairs in even rounds, odd pairs in odd rounds, so no slot is in
two pairs.  A pair swaps with probability min(1, exp((beta_k - beta_{k+1}) *
(E_k - E_{k+1}))), E_k being the energy of the replica sitting at slot k.  The
uniform numbers come from a generator keyed by (seed, round) only, so every rank
that holds the same energies takes the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import seeding


@dataclass(frozen=True)
class ExchangeResult:
    slot_of_replica: np.ndarray   # (R,) int64: slots after the swaps
    attempted: np.ndarray         # (R-1,) bool, pair k = slots (k, k+1)
    accepted: np.ndarray          # (R-1,) bool
    probability: np.ndarray       # (R-1,) float64: min(1, exp(...)) of every pair, attempted or not


def exchange_rng(seed: int, round_no: int) -> np.random.Generator:
    """The generator of exchange round `round_no` (identical on every rank)."""
    return seeding.task_rng(seed, round_no, seeding.EXCHANGE)


def replica_at_slot(slot_of_replica: np.ndarray) -> np.ndarray:
    """Inverse permutation: which replica sits at each slot."""
    slot_of_replica = np.asarray(slot_of_replica)
    inverse = np.empty_like(slot_of_replica, dtype=np.int64)
    inverse[slot_of_replica] = np.arange(slot_of_replica.size)
    return inverse


def swap_probabilities(energy_at_slot: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """min(1, exp((beta_k - beta_{k+1}) * (E_k - E_{k+1}))) for every neighbour pair."""
    log_acc = (betas[:-1] - betas[1:]) * (energy_at_slot[:-1] - energy_at_slot[1:])
    return np.exp(np.minimum(log_acc, 0.0))


def exchange_round(energies_by_replica: np.ndarray, slot_of_replica: np.ndarray,
                   betas: np.ndarray, round_no: int, rng: np.random.Generator) -> ExchangeResult:
    """One exchange round; see the module docstring.  Inputs are not modified.

    `betas[k]` is 1/T of slot k (decreasing); `slot_of_replica[i]` the slot of replica i.
    One uniform is drawn per pair (attempted or not), so the stream use is fixed.
    """
    energies = np.asarray(energies_by_replica, dtype=np.float64)
    slots = np.asarray(slot_of_replica, dtype=np.int64)
    betas = np.asarray(betas, dtype=np.float64)
    n = slots.size
    if energies.shape != (n,) or betas.shape != (n,):
        raise ValueError(f"need {n} energies and betas, got {energies.shape}, {betas.shape}")
    if not np.array_equal(np.sort(slots), np.arange(n)):
        raise ValueError("slot_of_replica must be a permutation of 0..R-1")
    if not np.all(np.isfinite(energies)):
        raise ValueError("replica energies must be finite")
    who = replica_at_slot(slots)
    probability = swap_probabilities(energies[who], betas)
    attempted = np.arange(n - 1) % 2 == round_no % 2
    uniforms = rng.random(n - 1)
    accepted = attempted & (uniforms < probability)
    new_slots = slots.copy()
    for k in np.flatnonzero(accepted):
        new_slots[who[k]], new_slots[who[k + 1]] = k + 1, k
    return ExchangeResult(new_slots, attempted, accepted, probability)
