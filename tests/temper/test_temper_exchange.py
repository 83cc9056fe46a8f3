"""Exchange rule: sign, pair alternation, acceptance frequency, determinism."""

import math

import numpy as np
import pytest

from hpcopt.temper.exchange import (exchange_rng, exchange_round, replica_at_slot,
                                    swap_probabilities)


def test_hot_configuration_at_the_cold_slot_always_swaps():
    # replica 0 sits at the cold slot with the higher energy: the correct rule
    # accepts with probability 1; the opposite sign would accept with exp(-5)
    betas = np.array([1.0, 0.5])
    for r in range(0, 400, 2):
        res = exchange_round(np.array([10.0, 0.0]), np.array([0, 1]), betas, r, exchange_rng(3, r))
        assert res.attempted[0] and res.accepted[0]
        assert res.probability[0] == 1.0
        np.testing.assert_array_equal(res.slot_of_replica, [1, 0])


def test_acceptance_frequency_matches_the_rule():
    # cold replica already has the lower energy: accept with exp((1 - 0.5) * (0 - 2)) = e^-1
    betas = np.array([1.0, 0.5])
    n = 20000
    hits = sum(exchange_round(np.array([0.0, 2.0]), np.array([0, 1]), betas, 2 * r,
                              exchange_rng(11, 2 * r)).accepted[0] for r in range(n))
    p = math.exp(-1.0)
    assert abs(hits / n - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_probability_uses_the_slot_order_not_the_replica_order():
    # replica 2 is at slot 0; energies by replica id: slot energies are [5, 1, 3]
    energies = np.array([1.0, 3.0, 5.0])
    slots = np.array([1, 2, 0])
    betas = np.array([1.0, 0.5, 0.25])
    res = exchange_round(energies, slots, betas, 0, exchange_rng(0, 0))
    np.testing.assert_allclose(res.probability, [1.0, math.exp(0.25 * (1.0 - 3.0))])
    assert res.accepted[0]                      # certain swap of slots 0 and 1
    np.testing.assert_array_equal(res.slot_of_replica, [0, 2, 1])


def test_even_and_odd_pairs_alternate():
    n = 7
    energies = np.arange(n, 0, -1, dtype=float) * 10    # hot energies at cold slots: all accept
    betas = 1 / np.geomspace(1, 10, n)
    for r in range(6):
        res = exchange_round(energies, np.arange(n), betas, r, exchange_rng(1, r))
        assert np.array_equal(np.flatnonzero(res.attempted), np.arange(r % 2, n - 1, 2))
        assert np.array_equal(res.accepted, res.attempted)
        assert np.array_equal(np.sort(res.slot_of_replica), np.arange(n))
        # every accepted pair swapped its two replicas
        who = replica_at_slot(res.slot_of_replica)
        for k in np.flatnonzero(res.accepted):
            assert who[k] == k + 1 and who[k + 1] == k


def test_decisions_depend_only_on_seed_and_round():
    rng = np.random.default_rng(0)
    e = rng.normal(size=6) * 3
    slots = rng.permutation(6)
    betas = 1 / np.geomspace(1, 5, 6)
    a = exchange_round(e, slots, betas, 4, exchange_rng(9, 4))
    b = exchange_round(e.copy(), slots.copy(), betas, 4, exchange_rng(9, 4))
    assert np.array_equal(a.slot_of_replica, b.slot_of_replica)
    assert np.array_equal(a.accepted, b.accepted)
    draws = {exchange_rng(9, r).random() for r in range(50)} | {exchange_rng(10, 4).random()}
    assert len(draws) == 51


def test_inputs_are_validated_and_not_modified():
    e, slots, betas = np.array([1.0, 2.0]), np.array([0, 1]), np.array([1.0, 0.5])
    exchange_round(e, slots, betas, 0, exchange_rng(0, 0))
    assert slots.tolist() == [0, 1]
    with pytest.raises(ValueError):
        exchange_round(e, np.array([0, 0]), betas, 0, exchange_rng(0, 0))
    with pytest.raises(ValueError):
        exchange_round(np.array([1.0, np.nan]), slots, betas, 0, exchange_rng(0, 0))
    with pytest.raises(ValueError):
        exchange_round(e, slots, np.array([1.0]), 0, exchange_rng(0, 0))


def test_swap_probabilities_detailed_balance():
    # p(a->b)/p(b->a) = exp((b1-b2)(E1-E2)) for the pair states swapped
    betas = np.array([2.0, 0.7])
    for e1, e2 in [(0.3, 1.9), (4.0, -1.0), (2.0, 2.0)]:
        fwd = swap_probabilities(np.array([e1, e2]), betas)[0]
        back = swap_probabilities(np.array([e2, e1]), betas)[0]
        assert fwd / back == pytest.approx(math.exp((betas[0] - betas[1]) * (e1 - e2)))
