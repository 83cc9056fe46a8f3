"""PBT explore: sampling, perturbation rules, bounds, categorical neighbours, conditions."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hpcopt.hpo.pbt.explore import (clip_value, explore, perturb_value, sample_params,
                                    sample_value)
from hpo_helpers import space_from

SPACE = space_from("""
lr = { type = "loguniform", low = 1e-4, high = 1.0 }
mom = { type = "uniform", low = 0.0, high = 0.9 }
shift = { type = "uniform", low = -2.0, high = 2.0, step = 0.5 }
width = { type = "int", low = 1, high = 9, step = 2 }
units = { type = "int", low = 1, high = 512, log = true }
act = ["relu", "tanh", "gelu", "silu"]
layers = { type = "categorical", choices = [[64], [64, 32], [128, 64, 32]] }
batch = 32
""")


def in_bounds(p, v):
    if p.kind == "fixed":
        return v == p.value
    if p.kind == "categorical":
        return v in list(p.choices)
    if not p.low <= v <= p.high:
        return False
    if p.kind == "int":
        return isinstance(v, int) and (v - p.low) % (p.step or 1) == 0
    if p.step:
        return math.isclose((v - p.low) / p.step, round((v - p.low) / p.step), abs_tol=1e-9)
    return isinstance(v, float)


def test_samples_lie_in_the_space_and_cover_it():
    rng = np.random.default_rng(0)
    draws = [sample_params(SPACE, rng) for _ in range(400)]
    for d in draws:
        assert list(d) == SPACE.names
        assert all(in_bounds(SPACE[k], v) for k, v in d.items())
    lr = np.array([d["lr"] for d in draws])
    # log-uniform: about half the draws below the geometric midpoint 1e-2
    assert 0.4 < np.mean(lr < 1e-2) < 0.6
    assert {d["act"] for d in draws} == {"relu", "tanh", "gelu", "silu"}
    assert {d["width"] for d in draws} == {1, 3, 5, 7, 9}
    assert min(d["units"] for d in draws) >= 1 and max(d["units"] for d in draws) <= 512


def test_multiplicative_perturbation_for_positive_ranges():
    assert perturb_value(SPACE["lr"], 0.01, 1.2) == pytest.approx(0.012)
    assert perturb_value(SPACE["lr"], 0.01, 0.8) == pytest.approx(0.008)
    assert perturb_value(SPACE["lr"], 0.9, 1.2) == 1.0                    # clipped at high
    assert perturb_value(SPACE["units"], 100, 1.2) == 120


def test_additive_perturbation_when_the_range_touches_zero():
    # mom in [0, 0.9]: a product would never leave 0; shift by (f - 1) * range instead
    assert perturb_value(SPACE["mom"], 0.0, 1.2) == pytest.approx(0.18)
    assert perturb_value(SPACE["mom"], 0.0, 0.8) == 0.0                   # clipped at low
    # step grid of shift: -2, -1.5, ..., 2; 0 + 0.2 * 4 = 0.8 -> 1.0
    assert perturb_value(SPACE["shift"], 0.0, 1.2) == 1.0


def test_int_perturbation_always_moves_a_step():
    w = SPACE["width"]
    assert perturb_value(w, 1, 1.2) == 3          # 1 * 1.2 rounds back to 1: forced step
    assert perturb_value(w, 3, 0.8) == 1
    assert perturb_value(w, 1, 0.8) == 1          # already at the bound
    assert perturb_value(w, 9, 1.2) == 9


def test_categorical_moves_to_a_neighbour_and_bounces_at_the_ends():
    act = SPACE["act"]
    assert perturb_value(act, "tanh", 1.2) == "gelu"
    assert perturb_value(act, "tanh", 0.8) == "relu"
    assert perturb_value(act, "relu", 0.8) == "tanh"     # bounce at the start
    assert perturb_value(act, "silu", 1.2) == "gelu"     # bounce at the end
    assert perturb_value(act, "tanh", 1.0) == "tanh"
    assert perturb_value(SPACE["layers"], [64, 32], 1.2) == [128, 64, 32]
    with pytest.raises(ValueError, match="not one of the choices"):
        perturb_value(act, "elu", 1.2)


def test_fixed_values_never_change():
    rng = np.random.default_rng(1)
    params = sample_params(SPACE, rng)
    for _ in range(20):
        params, changes = explore(SPACE, params, rng, factors=(0.8, 1.2), resample_probability=0.5)
        assert params["batch"] == 32 and "batch" not in changes


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rp=st.floats(0.0, 1.0),
       factors=st.lists(st.floats(0.1, 10.0), min_size=1, max_size=4))
def test_explore_stays_in_bounds_and_categoricals_move_at_most_one(seed, rp, factors):
    rng = np.random.default_rng(seed)
    params = sample_params(SPACE, rng)
    new, changes = explore(SPACE, params, rng, factors=factors, resample_probability=rp)
    assert list(new) == SPACE.names
    for name, value in new.items():
        p = SPACE[name]
        assert in_bounds(p, value), (name, value)
        if p.kind == "categorical" and changes[name] != "resample":
            i, j = list(p.choices).index(params[name]), list(p.choices).index(value)
            assert abs(i - j) <= 1 and (i != j or changes[name] == "same")
    assert set(changes) == {n for n in SPACE.names if SPACE[n].kind != "fixed"}


def test_explore_is_a_function_of_the_generator_state():
    params = sample_params(SPACE, np.random.default_rng(5))
    a = explore(SPACE, params, np.random.default_rng(9), factors=(0.8, 1.2), resample_probability=0.3)
    b = explore(SPACE, params, np.random.default_rng(9), factors=(0.8, 1.2), resample_probability=0.3)
    assert a == b


def test_resample_probability_one_resamples_everything():
    params = sample_params(SPACE, np.random.default_rng(2))
    _, changes = explore(SPACE, params, np.random.default_rng(3), factors=(1.2,),
                         resample_probability=1.0)
    assert set(changes.values()) == {"resample"}


def test_conditional_children_follow_their_parent():
    space = space_from("""
opt = ["sgd", "adam"]
momentum = { type = "uniform", low = 0.1, high = 0.9, when = { param = "opt", equals = "sgd" } }
""")
    rng = np.random.default_rng(0)
    sgd = {"opt": "sgd", "momentum": 0.5}
    new, changes = explore(space, sgd, rng, factors=(1.2,), resample_probability=0.0)
    assert new == {"opt": "adam"}                                  # child dropped
    back, changes = explore(space, new, rng, factors=(0.8,), resample_probability=0.0)
    assert back["opt"] == "sgd" and changes["momentum"] == "new"   # child sampled
    assert 0.1 <= back["momentum"] <= 0.9


def test_clip_value_puts_values_on_the_grid():
    assert clip_value(SPACE["width"], 100) == 9
    assert clip_value(SPACE["width"], 4) in (3, 5)
    assert clip_value(SPACE["shift"], 0.7) == 0.5
    assert clip_value(SPACE["lr"], 5.0) == 1.0
    assert sample_value(SPACE["batch"], np.random.default_rng(0)) == 32
