import numpy as np
import pytest

from hpcopt.seeding import REPLICA, TASK, RankAwareSeedGenerator, seed_word, task_rng


def test_task_streams_depend_only_on_seed_and_id():
    a = task_rng(7, 42).random(5)
    b = task_rng(7, 42).random(5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, task_rng(7, 43).random(5))
    assert not np.array_equal(a, task_rng(8, 42).random(5))
    assert not np.array_equal(a, task_rng(7, 42, REPLICA).random(5))


def test_rank_aware_seeds_unique_and_deterministic():
    gen = RankAwareSeedGenerator(base_seed=12345, world_size=4)
    seeds = {gen.generate_seed(s, r) for s in range(50) for r in range(4)}
    assert len(seeds) == 200                                  # unique per (sample, rank)
    assert gen.generate_seed(42, 1) == RankAwareSeedGenerator(12345, 4).generate_seed(42, 1)
    assert gen.generate_seed(42, 1) != RankAwareSeedGenerator(12345, 8).generate_seed(42, 1)
    assert gen.generate_seed(42, 1) != RankAwareSeedGenerator(1, 4).generate_seed(42, 1)
    x = gen.rng(100, 2).random(3)
    np.testing.assert_array_equal(x, gen.rng(100, 2).random(3))


@pytest.mark.parametrize("rank", [4, -1])
def test_rank_aware_rejects_rank_outside_world(rank):
    with pytest.raises(ValueError, match="world_size"):
        RankAwareSeedGenerator(0, 4).generate_seed(1, rank)


def test_negative_task_id_rejected():
    with pytest.raises(ValueError):
        task_rng(0, -1, TASK)


def test_seed_word_is_numpys_seed_sequence_word_for_any_seed_and_key():
    """The cached re-implementation against numpy itself: seeds and key words of one and
    several 32-bit words, short and long keys, the same prefix with new tails (the cache)."""
    rng = np.random.default_rng(2026)
    cases = [(0, ()), (5, ()), (0, (0,)), (7, (2**32 - 1, 2**32)), (2**130 + 7, (1, 2)),
             (3, (2**64, 0, 2**33)), (1, (0, 0, 0, 0, 0))]
    for _ in range(2000):
        seed = int(rng.choice([rng.integers(100), rng.integers(2**32), rng.integers(2**63)]))
        key = tuple(int(rng.choice([rng.integers(10), rng.integers(2**32), rng.integers(2**40)]))
                    for _ in range(int(rng.integers(0, 7))))
        cases.append((seed, key))
    cases += [(11, (1001, 0, 1, k, a)) for k in range(200) for a in (0, 3)]
    for seed, key in cases:
        expected = int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1)[0])
        assert seed_word(seed, *key) == expected, (seed, key)


def test_seed_word_refuses_negative_words_as_numpy_does():
    with pytest.raises(ValueError):
        seed_word(-1, 2)
    with pytest.raises(ValueError):
        seed_word(1, 2, -3)
