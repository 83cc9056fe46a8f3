"""Parallel tempering figures (in-process side; the MPI driver adds 1 vs 3 ranks).

* exchange overhead per round (gather + decisions + statistics + record) against the
  step work of the round, for cheap and expensive energies;
* a campaign of 4 replicas of a 2 ms energy: hpcopt at one rank, and the
  multiprocessing.Pool design of the tool hpcopt replaces (shared/seeds/002: replica
  states shipped to workers every interval, exchanges in the main process).

``run() -> dict``; ``python bench/bench_temper.py`` prints it as JSON.
``campaign_toml()`` gives the same 2 ms campaign as a config for ``hpcopt temper``
(function = "bench_temper:costly_energy": put bench/ on PYTHONPATH).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time

import numpy as np

from hpcopt.seeding import REPLICA, task_rng
from hpcopt.temper import ContinuousProblem, IsingProblem, TemperCampaign
from hpcopt.temper.config import FunctionSpec, IsingSpec, LadderSpec, MoveSpec, TemperConfig
from hpcopt.temper.exchange import exchange_rng, exchange_round
from hpcopt.temper.ladder import geometric_ladder
from hpcopt.temper.replica import Replica, rng_to_words

ENERGY_SECONDS = 0.002
DIM = 4
SEED = 0


def costly_energy(x: np.ndarray) -> float:
    """A Gaussian energy that burns 2 ms of CPU (stands for a real simulation)."""
    end = time.perf_counter() + ENERGY_SECONDS
    while time.perf_counter() < end:
        pass
    return 0.5 * float(np.dot(x, x))


def cheap_energy(x: np.ndarray) -> float:
    return 0.5 * float(np.dot(x, x))


def _config(n_replicas: int, rounds: int, interval: int, problem=None) -> TemperConfig:
    temps = tuple(geometric_ladder(1.0, 10.0, n_replicas).tolist())
    moves = MoveSpec((0.0,) * DIM, (1.0,) * DIM, (-np.inf,) * DIM, (np.inf,) * DIM)
    spec = problem or FunctionSpec("bench_temper:costly_energy", tuple(f"x{i}" for i in range(DIM)),
                                   moves)
    return TemperConfig(n_replicas, LadderSpec("geometric", temps), interval, rounds, 1, 0, spec,
                        "bench")


def campaign_toml(n_replicas: int = 4, rounds: int = 20, interval: int = 10) -> str:
    """The 2 ms campaign as a config file text (for the MPI side of the figure)."""
    return (f"[temper]\nreplicas = {n_replicas}\nt_min = 1.0\nt_max = 10.0\n"
            f"exchange_interval = {interval}\nrounds = {rounds}\n"
            f"[problem]\nfunction = \"bench_temper:costly_energy\"\nx0 = {[0.0] * DIM}\nstep = 1.0\n"
            f"[run]\nseed = {SEED}\n")


def _costly_problem(energy=costly_energy) -> ContinuousProblem:
    return ContinuousProblem("costly", energy, x0=np.zeros(DIM), step=1.0)


def hpcopt_campaign(n_replicas=4, rounds=20, interval=10, energy=costly_energy):
    """Wall time, records and timings of the campaign at one rank (SequentialCollective)."""
    cfg = _config(n_replicas, rounds, interval)
    t0 = time.perf_counter()
    camp = TemperCampaign(cfg, _costly_problem(energy), seed=SEED)
    records = []
    camp.run(on_round=records.append)
    return time.perf_counter() - t0, np.concatenate(records), camp.timings


# -- the seed's design: a process pool, states shipped every interval ---------------------------

_WORKER_REPLICAS: dict[int, Replica] = {}


def _pool_advance(job):
    """Worker: load the shipped replica state, run the interval, ship the state back."""
    replica_id, data, beta, n_steps, round_no = job
    rep = _WORKER_REPLICAS.get(replica_id)
    if rep is None:
        rep = _WORKER_REPLICAS[replica_id] = Replica(replica_id, _costly_problem(), SEED)
    rep.restore(data)
    rep.advance(n_steps, beta, round_no=round_no)
    return rep.checkpoint()


def pool_campaign(n_replicas=4, rounds=20, interval=10, workers=3):
    """Wall time (pool start included, as in the seed) and energies by round."""
    t0 = time.perf_counter()
    betas = 1.0 / geometric_ladder(1.0, 10.0, n_replicas)
    x0 = np.zeros(DIM)   # the same start as hpcopt's replicas: x0 and the stream of (seed, id)
    data = [{"state": x0.copy(), "energy": np.float64(cheap_energy(x0)), "best_state": x0.copy(),
             "best_energy": np.float64(cheap_energy(x0)), "best_round": np.int64(-1),
             "moves": np.zeros(2, np.int64), "rng": rng_to_words(task_rng(SEED, i, REPLICA))}
            for i in range(n_replicas)]
    slots = np.arange(n_replicas)
    energies = np.zeros((rounds, n_replicas))
    with mp.get_context("fork").Pool(workers) as pool:
        for r in range(rounds):
            jobs = [(i, data[i], betas[slots[i]], interval, r) for i in range(n_replicas)]
            data = pool.map(_pool_advance, jobs)
            e = np.array([float(d["energy"]) for d in data])
            energies[r] = e
            slots = exchange_round(e, slots, betas, r, exchange_rng(SEED, r)).slot_of_replica
    return time.perf_counter() - t0, energies


# -- exchange overhead ---------------------------------------------------------------------------

def _overhead(camp: TemperCampaign) -> dict:
    camp.run()
    t = camp.timings
    n = t["rounds"]
    advance = t["advance"] / n
    exchange = sum(t[k] for k in ("gather", "sample", "decide", "record", "checkpoint")) / n
    return {"replicas": camp.n_replicas, "rounds": n,
            "advance_ms_per_round": 1e3 * advance, "exchange_ms_per_round": 1e3 * exchange,
            "exchange_fraction": exchange / (advance + exchange)}


def exchange_overhead() -> dict:
    out = {}
    ising_cfg = _config(8, 300, 10, IsingSpec(16))
    TemperCampaign(_config(2, 1, 1, IsingSpec(4)), IsingProblem(4), seed=0).run()  # compile/load
    out["ising_L16_R8_10sweeps"] = _overhead(TemperCampaign(ising_cfg, IsingProblem(16), seed=1))
    cheap = _config(8, 300, 10)
    out["gaussian_R8_10steps"] = _overhead(TemperCampaign(cheap, _costly_problem(cheap_energy), seed=1))
    out["costly2ms_R4_10steps"] = _overhead(TemperCampaign(_config(4, 10, 10), _costly_problem(),
                                                           seed=1))
    return out


def run(n_replicas: int = 4, rounds: int = 20, interval: int = 10) -> dict:
    """All in-process tempering figures."""
    wall_hpcopt, records, _ = hpcopt_campaign(n_replicas, rounds, interval)
    pools = {}
    same = True
    for workers in (3, n_replicas):
        wall, energies = pool_campaign(n_replicas, rounds, interval, workers)
        pools[f"pool_{workers}_workers_wall_s"] = wall
        same &= bool(np.array_equal(energies, records["energy"]))
    return {
        "temper_exchange_overhead": exchange_overhead(),
        "temper_costly_campaign": {
            "replicas": n_replicas, "rounds": rounds, "exchange_interval": interval,
            "energy_ms": 1e3 * ENERGY_SECONDS,
            "serial_energy_s": n_replicas * rounds * interval * ENERGY_SECONDS,
            "hpcopt_1rank_wall_s": wall_hpcopt,
            **pools,
            "pool_matches_hpcopt": same,   # same streams: identical chains either way
            "cpus": mp.cpu_count(),
        },
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
