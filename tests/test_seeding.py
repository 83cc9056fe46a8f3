import numpy as np
import pytest

from hpcopt.seeding import REPLICA, TASK, RankAwareSeedGenerator, task_rng


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
