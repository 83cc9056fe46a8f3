"""Random streams that depend on (seed, task id), never on the rank count.

Every stream comes from ``numpy.random.SeedSequence(seed, spawn_key=(domain, id))``
so a task, replica or trial draws the same numbers at 1 rank or 64.  `domain`
separates independent uses of the same ids (start points vs. exchange rounds...).
"""

from __future__ import annotations

import functools
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


def seed_word(seed: int, *spawn_key: int) -> int:
    """``int(SeedSequence(seed, spawn_key=spawn_key).generate_state(1)[0])``, exactly, in
    half the time (the HPO coordinator derives two such seeds per trial).

    The pool that SeedSequence has mixed from `seed` and all but the last two key words is
    cached, so only those two words are hashed per call (numpy's algorithm and constants,
    numpy/random/bit_generator.pyx; tests/test_seeding.py compares the two). Python ints
    only (numpy integers would overflow here); negative words are refused, as numpy does."""
    if seed < 0 or (spawn_key and min(spawn_key) < 0):
        raise ValueError(f"seed and key words must be >= 0, got seed={seed}, key={spawn_key}")
    *pool, h = _mixed_prefix(seed, spawn_key[:-2])
    for word in spawn_key[-2:]:
        for w in _words(word):
            h = _mix_in(pool, h, w)
    value = ((pool[0] ^ _INIT_B) * _FIRST_B) & _M32      # generate_state(1): pool word 0
    return value ^ (value >> _XSHIFT)


# numpy's SeedSequence constants (a pool of 4 uint32 words)
_M32, _XSHIFT = 0xFFFFFFFF, 16
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_FIRST_B = (_INIT_B * _MULT_B) & _M32


def _words(n: int) -> list[int]:
    """An int as numpy coerces it: little-endian uint32 words, [0] for 0."""
    out = [n & _M32]
    n >>= 32
    while n:
        out.append(n & _M32)
        n >>= 32
    return out


def _hashmix(value: int, h: int) -> tuple[int, int]:
    value = (value ^ h) & _M32
    h = (h * _MULT_A) & _M32
    value = (value * h) & _M32
    return value ^ (value >> _XSHIFT), h


def _mix(x: int, y: int) -> int:
    x = (_MIX_L * x - _MIX_R * y) & _M32
    return x ^ (x >> _XSHIFT)


def _mix_in(pool: list[int], h: int, word: int) -> int:
    """One entropy word beyond the pool's size mixed into every pool word."""
    for i in range(4):
        v, h = _hashmix(word, h)
        pool[i] = _mix(pool[i], v)
    return h


@functools.lru_cache(maxsize=64)
def _mixed_prefix(seed: int, key_prefix: tuple[int, ...]) -> tuple[int, ...]:
    """(the 4 pool words, the hash constant) after `seed` (padded to the pool's size: a
    spawn key follows) and `key_prefix`."""
    entropy = _words(seed)
    entropy += [0] * (4 - len(entropy))
    h, pool = _INIT_A, []
    for w in entropy[:4]:
        v, h = _hashmix(w, h)
        pool.append(v)
    for src in range(4):
        for dst in range(4):
            if src != dst:
                v, h = _hashmix(pool[src], h)
                pool[dst] = _mix(pool[dst], v)
    for w in entropy[4:] + [w for k in key_prefix for w in _words(k)]:
        h = _mix_in(pool, h, w)
    return (*pool, h)


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
