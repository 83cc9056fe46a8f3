"""Ladders: geometric, explicit, adaptive (equal acceptance, ends fixed, frozen after burn-in)."""

import numpy as np
import pytest
from temper_helpers import config_from_toml, run_world

from hpcopt.temper.ladder import Ladder, check_ladder, geometric_ladder


def test_geometric_ladder():
    t = geometric_ladder(1.0, 20.0, 6)
    assert t[0] == 1.0 and t[-1] == 20.0 and t.size == 6
    ratios = t[1:] / t[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-12)
    assert geometric_ladder(2.5, 2.5, 1).tolist() == [2.5]
    for bad in [(0.0, 1.0, 3), (2.0, 1.0, 3), (1.0, 1.0, 3), (1.0, 2.0, 0)]:
        with pytest.raises(ValueError):
            geometric_ladder(*bad)


def test_check_ladder():
    assert check_ladder([1, 2, 3]).dtype == np.float64
    for bad in ([], [1.0, 1.0], [2.0, 1.0], [-1.0, 1.0], [1.0, np.inf]):
        with pytest.raises(ValueError):
            check_ladder(bad)


def model_acceptance(t, stiffness):
    """A stand-in for measured acceptance: falls with the log-gap, more where `stiffness` is big
    (a heat-capacity peak)."""
    gaps = np.diff(np.log(t))
    return np.exp(-stiffness * gaps ** 2)


def test_adaptive_ladder_equalises_acceptance_with_ends_fixed():
    t0 = geometric_ladder(1.0, 50.0, 8)
    stiffness = np.array([1.0, 2.0, 8.0, 30.0, 8.0, 2.0, 1.0])
    ladder = Ladder(t0, adaptive=True, adapt_rounds=3000, adapt_lag=100.0, adapt_time=5.0)
    before = model_acceptance(ladder.temperatures, stiffness)
    for r in range(3000):
        ladder.update(r, model_acceptance(ladder.temperatures, stiffness))
    t = ladder.temperatures
    after = model_acceptance(t, stiffness)
    assert t[0] == 1.0 and t[-1] == 50.0 and np.all(np.diff(t) > 0)
    assert np.ptp(after) < 0.1 * np.ptp(before)
    assert np.ptp(after) < 0.02
    # the stiff region got the narrow gaps
    gaps = np.diff(np.log(t))
    assert gaps[3] == gaps.min() and gaps[0] == gaps.max()


def test_adaptive_ladder_freezes_and_fixed_ladders_never_move():
    t0 = geometric_ladder(1.0, 10.0, 5)
    a = np.array([0.9, 0.1, 0.5, 0.5])
    ladder = Ladder(t0, adaptive=True, adapt_rounds=10)
    for r in range(10):
        ladder.update(r, a)
    frozen = ladder.temperatures
    assert not np.array_equal(frozen, t0)
    for r in range(10, 30):
        assert not ladder.adapting(r)
        ladder.update(r, a)
    assert np.array_equal(ladder.temperatures, frozen)
    fixed = Ladder(t0)
    fixed.update(0, a)
    assert np.array_equal(fixed.temperatures, t0)
    # two temperatures: nothing to adapt (ends are fixed)
    two = Ladder([1.0, 3.0], adaptive=True, adapt_rounds=10)
    two.update(0, np.array([0.2]))
    assert two.temperatures.tolist() == [1.0, 3.0]


def test_rate_decays_and_state_round_trips():
    ladder = Ladder(geometric_ladder(1, 8, 4), adaptive=True, adapt_rounds=5, adapt_lag=10,
                    adapt_time=4)
    assert ladder.rate(0) == 0.25 and ladder.rate(10) == 0.125
    ladder.update(0, np.array([0.9, 0.2, 0.4]))
    other = Ladder(geometric_ladder(1, 8, 4))
    other.restore(ladder.state())
    assert np.array_equal(other.temperatures, ladder.temperatures)
    with pytest.raises(ValueError):
        other.restore({"temperatures": np.array([1.0, 2.0])})
    with pytest.raises(ValueError):
        ladder.update(1, np.array([0.5, np.nan, 0.5]))


def test_adaptive_campaign_equalises_measured_acceptance_on_ising():
    text = """
        [temper]
        replicas = 7
        t_min = 1.2
        t_max = 8.0
        exchange_interval = 2
        rounds = 3000
        burn_in = 1500
        ladder = "{ladder}"
        [problem]
        name = "ising"
        L = 8
        """
    fixed = run_world(config_from_toml(text.format(ladder="geometric")), 1, 0)[2]
    adapted = run_world(config_from_toml(text.format(ladder="adaptive")), 1, 0)[2]
    assert adapted.temperatures[0] == 1.2 and adapted.temperatures[-1] == 8.0
    # acceptance measured after the ladder froze (burn-in excluded)
    spread_fixed = np.ptp(fixed.pairs["mean_probability"])
    spread_adapted = np.ptp(adapted.pairs["mean_probability"])
    assert spread_adapted < 0.1 and spread_adapted < 0.3 * spread_fixed
    assert adapted.pairs["acceptance"].min() > 2 * fixed.pairs["acceptance"].min()
    assert adapted.replicas["round_trips"].sum() > fixed.replicas["round_trips"].sum()
