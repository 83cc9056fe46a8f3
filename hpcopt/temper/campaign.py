"""The tempering policy: rounds of Metropolis steps and collective exchanges, no MPI inside.

Each rank builds a :class:`TemperCampaign` for the replicas it owns and a
collective (see collective.py).  One round:

1. every owned replica advances `exchange_interval` steps at its slot temperature;
2. (every `thin` rounds after burn-in) the rank owning the replica at T_min starts
   sending its state to rank 0, which writes the sample;
3. one allgather of a float64 row per replica: energy, best energy, move
   acceptance, best round, the rank's stop code and checkpoint request, observables;
4. exchange decisions from (seed, round) only, identical everywhere; statistics;
   the adaptive ladder's update; the round record.

Every rank ends the round with identical slots, ladder, statistics and record,
so results are bit-identical for any partition of the replicas.  A stop or a
checkpoint asked for by any rank in round r happens on every rank after round r.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .collective import Collective, SequentialCollective
from .config import TemperConfig
from .exchange import exchange_rng, exchange_round
from .ladder import Ladder
from .problems import Problem
from .replica import Replica
from ..store.dtypes import REPLICA_DTYPE, round_dtype, sample_dtype
from .stats import TemperStats

CHECKPOINT_FORMAT = 2      # 2: with the log Z accumulators (stats_logz_*)
_REPLICA_KEYS = ("state", "energy", "best_state", "best_energy", "best_round", "moves", "rng")
# gathered columns: energy, best energy, move acceptance, best round, stop code, checkpoint
# request (then the observables)
_COLUMNS = 6
_STOP, _CHECKPOINT = 4, 5
#: default checkpoint cadence: at least this many seconds apart, and at most this fraction of
#: the run's time (a checkpoint of big states takes a while)
CHECKPOINT_SECONDS = 1.0
CHECKPOINT_SHARE = 0.05


@dataclass
class RoundOutcome:
    record: np.ndarray              # shape (1,), campaign.record_dtype
    sample: np.ndarray | None       # shape (1,), campaign.sample_dtype: rank 0, when one was taken
    stop: bool                      # some rank asked to stop: checkpoint, then end the run
    stop_code: int = 0              # what the first rank (in rank order) that asked gave
    checkpoint: bool = False        # some rank asked for a checkpoint after this round


@dataclass
class TemperSummary:
    best_energy: float
    best_state: np.ndarray
    best_replica: int
    best_round: int                 # -1: the start state
    temperatures: np.ndarray        # the ladder at the end
    pairs: np.ndarray               # store.dtypes.PAIR_DTYPE rows
    replicas: np.ndarray            # store.dtypes.REPLICA_DTYPE rows
    slots: np.ndarray               # store.dtypes.SLOT_DTYPE rows
    log_z_ratio: float              # TI: log Z(T_min) - log Z(T_max) (nan with one replica)
    rounds_done: int
    log_z: dict[str, tuple[float, float]]   # {method: (estimate, standard error)}, see stats


class CheckpointClock:
    """When rank 0 asks for the next checkpoint (the default cadence, see above)."""

    def __init__(self, seconds: float = CHECKPOINT_SECONDS, share: float = CHECKPOINT_SHARE):
        self.seconds, self.share = seconds, share
        self.last = time.monotonic()
        self.cost = 0.0

    def due(self) -> bool:
        return time.monotonic() - self.last >= max(self.seconds, self.cost / self.share)

    def wrote(self, seconds: float) -> None:
        self.cost = seconds
        self.last = time.monotonic()


class TemperCampaign:
    """The replicas one rank owns plus the state every rank shares (slots, ladder, stats)."""

    def __init__(self, config: TemperConfig, problem: Problem, *, seed: int,
                 owned: Sequence[int] | None = None, collective: Collective | None = None,
                 checkpoint: dict | None = None):
        n = config.n_replicas
        owned = list(range(n) if owned is None else owned)
        if not owned or owned != sorted(set(owned)) or owned[0] < 0 or owned[-1] >= n:
            raise ValueError(f"owned replica ids must be distinct, increasing, in 0..{n - 1} and "
                             f"not empty (need replicas >= ranks), got {owned}")
        if collective is None:
            if len(owned) != n:
                raise ValueError("a partial set of replicas needs a collective")
            collective = SequentialCollective()
        self.config, self.problem, self.seed = config, problem, int(seed)
        self.collective = collective
        self.n_replicas = n
        self.replicas = [Replica(i, problem, self.seed) for i in owned]
        self.ladder = Ladder.from_spec(config.ladder)
        self.slot_of_replica = np.arange(n, dtype=np.int64)
        self.stats = TemperStats(n, config.burn_in)
        self.round = 0
        self.record_dtype = round_dtype(n, problem.observable_names)
        self.sample_dtype = sample_dtype(problem.state_shape, problem.state_dtype,
                                         problem.observable_names)
        # seconds per phase (benchmarks): advance = the Metropolis steps, gather = the round's
        # allgather (waiting included), sample = receiving the T_min state, decide = exchange
        # decisions, statistics and record, record / checkpoint = run()'s callbacks
        self.timings = dict.fromkeys(("advance", "gather", "sample", "decide", "record",
                                      "checkpoint"), 0.0)
        self.timings["rounds"] = 0
        self.stop_code = 0              # of the rank that stopped the run (see run)
        if checkpoint is not None:
            self.restore(checkpoint)

    @property
    def done(self) -> bool:
        return self.round >= self.config.rounds

    def sample_due(self, round_no: int) -> bool:
        b = self.config.burn_in
        return round_no >= b and (round_no - b) % self.config.thin == 0

    # -- one round -------------------------------------------------------------------------
    def run_round(self, stop_requested: bool | int = False,
                  checkpoint_wanted: bool = False) -> RoundOutcome:
        """Advance, gather, exchange; collective (every rank calls it in the same round).

        `stop_requested`: nonzero asks every rank to stop after this round; the value
        (the number of the signal that asked, or 1) comes back as ``stop_code``.
        `checkpoint_wanted`: ask every rank for a checkpoint after this round.
        """
        if self.done:
            raise RuntimeError("the campaign has run all its rounds")
        r, cfg = self.round, self.config
        temps = self.ladder.temperatures
        betas = 1.0 / temps
        t0 = time.perf_counter()
        for rep in self.replicas:
            k = self.slot_of_replica[rep.id]
            rep.advance(cfg.exchange_interval, betas[k], self.problem.step_factor(temps[k], temps[0]), r)
        t1 = time.perf_counter()

        cold = int(np.flatnonzero(self.slot_of_replica == 0)[0])
        sampling = self.sample_due(r)
        if sampling:     # posted first: it travels while the energies are gathered
            states = [rep.state for rep in self.replicas if rep.id == cold]
            local_state = (np.stack(states) if states else
                           np.empty((0,) + self.problem.state_shape, self.problem.state_dtype))
            pending = self.collective.to_root(local_state, [cold])
        local = np.empty((len(self.replicas), _COLUMNS + len(self.problem.observable_names)))
        for row, rep in zip(local, self.replicas):
            row[:_COLUMNS] = (rep.energy, rep.best_energy, rep.last_acceptance, rep.best_round,
                              float(int(stop_requested)), float(bool(checkpoint_wanted)))
            row[_COLUMNS:] = self.problem.observables(rep.state)
        full = self.collective.allgather(local)
        t2 = time.perf_counter()
        energies, best_energies = full[:, 0].copy(), full[:, 1].copy()
        asked = np.flatnonzero(full[:, _STOP] != 0)
        stop_code = int(full[asked[0], _STOP]) if asked.size else 0
        slots = self.slot_of_replica
        sample = None
        if sampling:
            cold_state = pending.wait()
            self.stats.n_samples += 1
            if cold_state is not None:        # rank 0 writes the samples
                sample = self._sample_row(r, temps[0], cold, full, cold_state[0])
        t3 = time.perf_counter()

        ex = None
        if self.n_replicas > 1:
            ex = exchange_round(energies, slots, betas, r, exchange_rng(self.seed, r))
        self.stats.update(r, slots, energies, best_energies, ex, betas)
        record = self._record(r, temps, slots, full, ex)
        if ex is not None:
            self.ladder.update(r, ex.probability)
            self.slot_of_replica = ex.slot_of_replica
        self.round += 1
        t4 = time.perf_counter()
        tm = self.timings
        tm["advance"] += t1 - t0
        tm["gather"] += t2 - t1
        tm["sample"] += t3 - t2
        tm["decide"] += t4 - t3
        tm["rounds"] += 1
        return RoundOutcome(record, sample, stop_code != 0, stop_code,
                            bool(np.any(full[:, _CHECKPOINT] != 0)))

    def _sample_row(self, r: int, t_min: float, i: int, full: np.ndarray,
                    state: np.ndarray) -> np.ndarray:
        row = np.zeros(1, dtype=self.sample_dtype)
        row["task_id"], row["replica"], row["temperature"] = r, i, t_min
        row["energy"], row["state"] = full[i, 0], state
        for j, name in enumerate(self.problem.observable_names):
            row[name] = full[i, _COLUMNS + j]
        return row

    def _record(self, r: int, temps, slots, full, ex) -> np.ndarray:
        row = np.zeros(1, dtype=self.record_dtype)
        row["task_id"] = r
        row["slot"] = slots
        row["temperature"] = temps[slots]
        row["energy"] = full[:, 0]
        row["move_acceptance"] = full[:, 2]
        for j, name in enumerate(self.problem.observable_names):
            row[name] = full[:, _COLUMNS + j]
        if ex is not None:
            row["swap_attempted"], row["swap_accepted"] = ex.attempted, ex.accepted
            row["swap_probability"] = ex.probability
        row["best_energy"] = self.stats.best_energy
        return row

    # -- the whole run ---------------------------------------------------------------------
    def run(self, on_round: Callable[[np.ndarray], None] | None = None,
            on_sample: Callable[[np.ndarray], None] | None = None,
            should_stop: Callable[[], bool | int] | None = None, checkpoint_every: int = 0,
            on_checkpoint: Callable[[dict | None], None] | None = None,
            checkpoint_clock: CheckpointClock | None = None) -> str:
        """Run the remaining rounds; 'complete' or 'interrupted' (a rank asked to stop).

        With `on_checkpoint`, checkpoints (collective; the dict on rank 0, None on the
        other ranks) after every `checkpoint_every` rounds, when a rank's
        `checkpoint_clock` says so, on a stop and at the end.  A stop asked for in the
        last round changes nothing: the campaign is complete.  The stop code of an
        interrupted run is kept in ``stop_code``.
        """
        while not self.done:
            want = checkpoint_clock is not None and checkpoint_clock.due()
            out = self.run_round(should_stop() if should_stop else 0, want)
            t0 = time.perf_counter()
            if on_round:
                on_round(out.record)
            if out.sample is not None and on_sample:
                on_sample(out.sample)
            self.timings["record"] += time.perf_counter() - t0
            stopping = out.stop and not self.done
            due = out.checkpoint or (checkpoint_every and self.round % checkpoint_every == 0)
            if on_checkpoint and (stopping or due or self.done):
                t0 = time.perf_counter()
                on_checkpoint(self.checkpoint(to_root=True))
                took = time.perf_counter() - t0
                self.timings["checkpoint"] += took
                if checkpoint_clock is not None:
                    checkpoint_clock.wrote(took)
            if stopping:
                self.stop_code = out.stop_code
                return "interrupted"
        return "complete"

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint(self, to_root: bool = False) -> dict[str, np.ndarray] | None:
        """The full campaign state as flat numpy arrays (collective).

        Replica arrays are stacked by replica id, so a checkpoint restores at any
        rank count.  Every rank gets it, or with `to_root` only rank 0 (the others
        get None; one gather of packed replica records either way).  Call between
        rounds, on every rank.
        """
        parts = [rep.checkpoint() for rep in self.replicas]
        packed = np.zeros(len(parts), dtype=[(k, v.dtype, v.shape) for k, v in parts[0].items()])
        for row, part in zip(packed, parts):
            for key, value in part.items():
                row[key] = value
        if to_root:
            full = self.collective.to_root(packed, range(self.n_replicas)).wait()
            if full is None:
                return None
        else:
            full = self.collective.allgather(packed)
        ck: dict[str, np.ndarray] = {
            "format": np.asarray(CHECKPOINT_FORMAT, dtype=np.int64),
            "seed": np.asarray(self.seed, dtype=np.int64),
            "round": np.asarray(self.round, dtype=np.int64),
            "slot_of_replica": self.slot_of_replica.copy(),
        }
        ck.update({f"ladder_{k}": v for k, v in self.ladder.state().items()})
        ck.update({f"stats_{k}": np.asarray(v) for k, v in self.stats.state().items()})
        for key in _REPLICA_KEYS:
            ck[f"replica_{key}"] = np.ascontiguousarray(full[key])
        return ck

    def restore(self, ck: dict) -> None:
        """Continue from :meth:`checkpoint` output (any partition); checks it fits the config."""
        if int(ck["format"]) != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {int(ck['format'])} is not {CHECKPOINT_FORMAT}")
        if int(ck["seed"]) != self.seed:
            raise ValueError(f"checkpoint seed {int(ck['seed'])} differs from the run's {self.seed}")
        slots = np.array(ck["slot_of_replica"], dtype=np.int64)
        if not np.array_equal(np.sort(slots), np.arange(self.n_replicas)):
            raise ValueError(f"checkpoint is for {slots.size} replicas, the config has {self.n_replicas}")
        self.round = int(ck["round"])
        self.slot_of_replica = slots
        self.ladder.restore({k[len("ladder_"):]: v for k, v in ck.items() if k.startswith("ladder_")})
        self.stats.restore({k[len("stats_"):]: v for k, v in ck.items() if k.startswith("stats_")})
        for rep in self.replicas:
            rep.restore({key: np.asarray(ck[f"replica_{key}"])[rep.id] for key in _REPLICA_KEYS})

    # -- results ---------------------------------------------------------------------------
    def summary(self) -> TemperSummary:
        """Best state, per-pair/replica/slot tables, TI estimate (collective)."""
        local = np.array([[rep.best_energy, rep.best_round, rep.n_accepted, rep.n_proposed]
                          for rep in self.replicas], dtype=np.float64)
        full = self.collective.allgather(local)
        best_states = self.collective.allgather(np.stack([rep.best_state for rep in self.replicas]))
        i = int(np.argmin(full[:, 0]))
        temps = self.ladder.temperatures
        reps = np.zeros(self.n_replicas, dtype=REPLICA_DTYPE)
        reps["task_id"] = np.arange(self.n_replicas)
        reps["round_trips"] = self.stats.trips.count
        reps["mean_round_trip"] = self.stats.trips.mean_time()
        reps["best_energy"], reps["best_round"] = full[:, 0], full[:, 1]
        reps["final_slot"] = self.slot_of_replica
        with np.errstate(invalid="ignore", divide="ignore"):
            reps["move_acceptance"] = full[:, 2] / full[:, 3]
        slots = self.stats.slot_table(temps)
        log_z = self.stats.log_z.estimates(temps)
        return TemperSummary(float(full[i, 0]), best_states[i], i, int(full[i, 1]), temps,
                             self.stats.pair_table(temps), reps, slots,
                             log_z["thermodynamic_integration"][0], self.round, log_z)
