"""Campaign driver: identical results at any partition, bit-for-bit resume, stop, bookkeeping."""

import json

import h5py
import numpy as np
import pytest
from temper_helpers import config_from_toml, run_world

from hpcopt.kernels import ising
from hpcopt.temper import (ContinuousProblem, TemperCampaign, ThreadedWorld, make_problem,
                           replicas_of_rank)
from hpcopt.temper.collective import block_sizes, rows_per_rank
from hpcopt.temper.replica import Replica, rng_from_words, rng_to_words
from hpcopt.temper.stats import energies_by_slot, round_trips_from_slots

MIXTURE = """
[temper]
replicas = 5
t_min = 1.0
t_max = 30.0
ladder = "adaptive"
exchange_interval = 7
rounds = 40
burn_in = 12
thin = 3
[problem]
name = "gaussian-mixture"
dim = 2
weights = [1.0, 2.0]
step = [1.0, 0.5]
step_scaling = "sqrt-t"
lower = -20.0
upper = 20.0
"""

ISING = """
[temper]
replicas = 5
t_min = 1.5
t_max = 5.0
exchange_interval = 3
rounds = 30
thin = 2
[problem]
name = "ising"
L = 6
"""


def same_summary(a, b):
    assert a.best_energy == b.best_energy and a.best_replica == b.best_replica
    assert a.best_round == b.best_round and a.rounds_done == b.rounds_done
    np.testing.assert_array_equal(a.best_state, b.best_state)
    for name in ("temperatures", "pairs", "replicas", "slots"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    assert a.log_z_ratio == b.log_z_ratio or (np.isnan(a.log_z_ratio) and np.isnan(b.log_z_ratio))
    assert np.asarray(list(a.log_z.values())).tobytes() == np.asarray(list(b.log_z.values())).tobytes()


def same_checkpoint(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes(), k


@pytest.mark.parametrize("text", [MIXTURE, ISING], ids=["mixture", "ising"])
def test_results_do_not_depend_on_the_partition(text):
    cfg = config_from_toml(text)
    ref = run_world(cfg, 7, 0)
    records, samples = ref[0], ref[1]
    assert records.size == cfg.rounds and records["task_id"].tolist() == list(range(cfg.rounds))
    assert samples.size > 0 and records["swap_accepted"].any()
    for world in (1, 2, 3):
        other = run_world(cfg, 7, world)
        assert other[0].tobytes() == records.tobytes()
        assert other[1].tobytes() == samples.tobytes()
        same_summary(other[2], ref[2])
        same_checkpoint(other[3], ref[3])
    # another seed gives another campaign
    assert run_world(cfg, 8, 0)[0].tobytes() != records.tobytes()


def write_and_read_hdf5(ck, path):
    """The checkpoint is plain arrays: store it as HDF5 datasets and read it back."""
    with h5py.File(path, "w") as f:
        g = f.create_group("checkpoint")
        for k, v in ck.items():
            g.create_dataset(k, data=v)
    with h5py.File(path, "r") as f:
        return {k: f["checkpoint"][k][()] for k in f["checkpoint"]}


@pytest.mark.parametrize("text", [MIXTURE, ISING], ids=["mixture", "ising"])
def test_resume_from_a_checkpoint_continues_bit_for_bit(text, tmp_path):
    cfg = config_from_toml(text)
    full = run_world(cfg, 3, 2)
    first = run_world(cfg, 3, 2, rounds=17)          # stop after 17 rounds at 2 ranks
    ck = write_and_read_hdf5(first[3], tmp_path / "ck.h5")
    json.dumps(ck["replica_rng"].tolist())           # the generator state is plain numbers
    assert all(np.asarray(v).dtype != object for v in ck.values())
    rest = run_world(cfg, 3, 3, checkpoint=ck)       # ... and resume at 3 ranks
    assert np.concatenate([first[0], rest[0]]).tobytes() == full[0].tobytes()
    assert np.concatenate([first[1], rest[1]]).tobytes() == full[1].tobytes()
    same_summary(rest[2], full[2])
    same_checkpoint(rest[3], full[3])


def test_a_stop_on_one_rank_stops_every_rank_in_the_same_round():
    cfg = config_from_toml(MIXTURE)
    full = run_world(cfg, 5, 0)
    stopped = run_world(cfg, 5, 3, stop_at=(2, 9))   # rank 2 is asked to stop during round 9
    assert stopped[4] == "interrupted" and stopped[0].size == 10
    assert int(stopped[3]["round"]) == 10
    rest = run_world(cfg, 5, 2, checkpoint=stopped[3])
    assert np.concatenate([stopped[0], rest[0]]).tobytes() == full[0].tobytes()


def test_run_drives_callbacks_and_checkpoints():
    cfg = config_from_toml(ISING)
    checkpoints, rounds, samples = [], [], []
    camp = TemperCampaign(cfg, make_problem(cfg.problem), seed=1)
    status = camp.run(on_round=rounds.append, on_sample=samples.append, checkpoint_every=8,
                      on_checkpoint=lambda ck: checkpoints.append(int(ck["round"])))
    assert status == "complete" and len(rounds) == 30 and len(samples) == 15
    assert checkpoints == [8, 16, 24, 30]
    assert camp.timings["rounds"] == 30
    with pytest.raises(RuntimeError):
        camp.run_round()


def test_records_are_consistent():
    cfg = config_from_toml(ISING.replace("rounds = 30", "rounds = 300"))
    records, samples, summary, ck, _ = run_world(cfg, 11, 2)
    slots = records["slot"]
    # slots of round r+1 are those of round r after its accepted swaps
    for r in range(len(records) - 1):
        expect = slots[r].copy()
        for k in np.flatnonzero(records["swap_accepted"][r]):
            i, j = np.flatnonzero(slots[r] == k)[0], np.flatnonzero(slots[r] == k + 1)[0]
            expect[i], expect[j] = k + 1, k
        assert np.array_equal(slots[r + 1], expect)
    assert np.all(records["swap_accepted"] <= records["swap_attempted"])
    # temperatures follow the slots; samples are the T_min replica of their round
    temps = summary.temperatures
    assert np.array_equal(records["temperature"], temps[slots])
    e_slot = energies_by_slot(records)
    for s in samples:
        assert slots[s["task_id"], s["replica"]] == 0
        assert s["energy"] == e_slot[s["task_id"], 0] == ising.energy(s["state"])
        assert s["magnetisation"] == s["state"].astype(int).sum()
    # running best is a running minimum of the energies seen at round ends or lower
    best = records["best_energy"]
    assert np.all(np.diff(best) <= 0) and np.all(best <= records["energy"].min(axis=1))
    assert summary.best_energy == best[-1] == ising.energy(summary.best_state)
    # pair statistics and round trips agree with a recount from the records
    assert summary.pairs["attempted"].tolist() == records["swap_attempted"].sum(axis=0).tolist()
    assert summary.pairs["accepted"].tolist() == records["swap_accepted"].sum(axis=0).tolist()
    trips = round_trips_from_slots(slots)
    assert summary.replicas["round_trips"].tolist() == trips.count.tolist()
    assert summary.replicas["round_trips"].sum() > 0
    np.testing.assert_allclose(summary.slots["mean_energy"], e_slot.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(summary.slots["var_energy"], e_slot.var(axis=0, ddof=1), rtol=1e-9)


def test_round_trip_counting():
    # replica 0 goes 0 -> 2 -> 0 -> 2 -> 0: two round trips of 4 rounds each
    path = [0, 1, 2, 1, 0, 1, 2, 1, 0]
    slots = np.array([[s, (s + 1) % 3, (s + 2) % 3] for s in path])
    trips = round_trips_from_slots(slots)
    assert trips.count[0] == 2 and trips.time_sum[0] == 8
    assert trips.mean_time()[0] == 4.0


def test_partition_is_contiguous_and_even_and_rank_0_steps_the_fewest():
    """Rank 0 also writes: with a remainder, the last ranks take the extra replicas."""
    for n, w in [(5, 1), (5, 2), (5, 3), (7, 3), (6, 6), (4, 3), (9, 4)]:
        blocks = [replicas_of_rank(n, w, r) for r in range(w)]
        assert [i for b in blocks for i in b] == list(range(n))
        sizes = [len(b) for b in blocks]
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes)
        assert rows_per_rank(range(n), n, w) == sizes == block_sizes(n, w)
    assert [len(replicas_of_rank(4, 3, r)) for r in range(3)] == [1, 1, 2]


def test_threaded_world_reports_the_failing_rank_error():
    def body(rank, owned, coll):
        if rank == 1:
            raise KeyError("boom")
        coll.allgather(np.zeros((len(owned), 1)))

    with pytest.raises(KeyError, match="boom"):
        ThreadedWorld(4, 3, timeout=30).run(body)


def test_campaign_validates_owned_replicas():
    cfg = config_from_toml(ISING)
    problem = make_problem(cfg.problem)
    for owned in ([], [1, 0], [0, 5]):
        with pytest.raises(ValueError):
            TemperCampaign(cfg, problem, seed=0, owned=owned, collective=object())
    with pytest.raises(ValueError):
        TemperCampaign(cfg, problem, seed=0, owned=[0, 1])


def test_generator_words_round_trip():
    rng = np.random.default_rng(123)
    rng.random(3)
    rng.integers(0, 10, size=1, dtype=np.uint32)     # leaves a buffered half word
    copy = rng_from_words(rng_to_words(rng))
    assert copy.bit_generator.state == rng.bit_generator.state
    assert copy.random() == rng.random()


def bowl(x):
    return float(np.sum(x * x))


@pytest.mark.parametrize("boundary", ["reflect", "reject"])
def test_continuous_moves_respect_bounds_and_track_the_best(boundary):
    problem = ContinuousProblem("bowl", bowl, x0=[0.9, -0.9], step=[2.0, 2.0], lower=[-1.0, -1.0],
                                upper=[1.0, 1.0], boundary=boundary)
    rep = Replica(0, problem, seed=4)
    seen = []
    for r in range(30):
        rep.advance(20, 1.0, round_no=r)
        seen.append(rep.state.copy())
        assert rep.energy == bowl(rep.state)
    seen = np.array(seen)
    assert np.all(np.abs(seen) <= 1.0) and len(np.unique(seen[:, 0])) > 5
    assert rep.best_energy == bowl(rep.best_state) <= min(bowl(s) for s in seen)
    assert 0 < rep.n_accepted < rep.n_proposed == 600


def test_fold_reflects_into_the_box():
    p = ContinuousProblem("f", bowl, x0=[0.0, 0.0, 0.0], lower=[0.0, -np.inf, 0.0],
                          upper=[1.0, 2.0, np.inf])
    np.testing.assert_allclose(p.fold(np.array([1.3, 2.5, -0.25])), [0.7, 1.5, 0.25])
    np.testing.assert_allclose(p.fold(np.array([-2.2, -7.0, 3.0])), [0.2, -7.0, 3.0])
    np.testing.assert_allclose(p.fold(np.array([3.6, 0.0, 0.0])), [0.4, 0.0, 0.0])


@pytest.mark.parametrize("text", [MIXTURE, ISING], ids=["mixture", "ising"])
def test_more_rounds_after_the_end_continue_the_chains_bit_for_bit(text):
    """Issue 13.2: a campaign run to R rounds and then extended to R' is the campaign run to R'
    at once (nothing in a round depends on the planned number of rounds)."""
    import dataclasses
    big = config_from_toml(text)
    small = dataclasses.replace(big, rounds=big.rounds - 11)
    full = run_world(big, 9, 0)
    first = run_world(small, 9, 2)                     # complete at R - 11 rounds
    assert first[4] == "complete" and int(first[3]["round"]) == small.rounds
    rest = run_world(big, 9, 3, checkpoint=first[3])
    assert np.concatenate([first[0], rest[0]]).tobytes() == full[0].tobytes()
    assert np.concatenate([first[1], rest[1]]).tobytes() == full[1].tobytes()
    same_summary(rest[2], full[2])
    assert rest[2].log_z == full[2].log_z
    same_checkpoint(rest[3], full[3])
