"""Random streams that depend on (seed, task id), never on the rank count.

Every stream comes from ``numpy.random.SeedSequence(seed, spawn_key=(domain, id))``
so a task, replica or trial draws the same numbers at 1 rank or 64.  `domain`
separates independent uses of the same ids (start points vs. exchange rounds...).
"""

from __future__ import annotations

import hashlib

import numpy as np

# stream domains: one per use, so two uses of task 7 never share numbers
TASK = 0
REPLICA = 1
EXCHANGE = 2
TRIAL = 3
DESIGN = 4
PBT = 5
WARM = 6


def seed_sequence(seed: int, domain: int, index: int) -> np.random.SeedSequence:
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return np.random.SeedSequence(seed, spawn_key=(domain, index))


def task_rng(seed: int, task_id: int, domain: int = TASK) -> np.random.Generator:
    """The generator of one task (or replica/trial with another domain)."""
    return np.random.default_rng(seed_sequence(seed, domain, task_id))


class RankAwareSeedGenerator:
    """Seeds unique per (base seed, sample id, rank, world size) and deterministic.

    The successor of the DPA tool's generator (shared/seeds/003): for data
    augmentation style uses where each rank must see *different* numbers for the
    same sample id.  hpcopt campaigns themselves use :func:`task_rng`, whose
    streams do not depend on the rank.
    """

    def __init__(self, base_seed: int = 0, world_size: int = 1):
        if world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        self.base_seed = int(base_seed)
        self.world_size = int(world_size)

    def _check(self, rank: int) -> None:
        if not 0 <= rank < self.world_size:
            raise ValueError(f"rank ({rank}) must be < world_size ({self.world_size}) and >= 0")

    def generate_seed(self, sample_id: int, rank: int) -> str:
        """A 128-bit hex seed (SHA-256 of the four numbers), stable across runs and platforms."""
        self._check(rank)
        key = f"{self.base_seed}:{int(sample_id)}:{rank}:{self.world_size}".encode()
        return hashlib.sha256(key).hexdigest()[:32]

    def rng(self, sample_id: int, rank: int) -> np.random.Generator:
        return np.random.default_rng(int(self.generate_seed(sample_id, rank), 16))
