"""The tempering campaign on MPI ranks, recorded in HDF5 (run by the temper kind).

Every rank owns a contiguous block of replicas and runs the same
:class:`TemperCampaign`; the only collective is one exchange of the round's rows per
round (:class:`hpcopt.mpi.collective.MpiCollective`).  Rank 0 writes the per-round
records, the T_min samples and double-buffered checkpoints (slot a/b, the valid round
of each written last), so a job killed at any moment resumes from the newest complete
checkpoint and continues bit for bit.
"""

from __future__ import annotations

import signal
from pathlib import Path

import h5py
import numpy as np

from ..campaign.contract import RunOutcome, Session
from ..errors import ResultFileError
from ..mpi.collective import MpiCollective
from ..mpi.runtime import stop_signal_name
from ..progress import Progress
from ..resources import Resources, apply_on_workers
from ..store import schema
from ..store.resultfile import FlushClock, ResultStore, TableSpec
from .campaign import CHECKPOINT_FORMAT, CheckpointClock, TemperCampaign
from .collective import replicas_of_rank
from .config import TemperConfig
from .extend import FINAL_ATTR, ROUNDS, SAMPLES, extend_file, n_samples
from .problems import IsingProblem, make_problem
from ..store.dtypes import PAIR_DTYPE, REPLICA_DTYPE, SLOT_DTYPE
from .stats import LOG_Z_ATTRS, log_z_lines

CHECKPOINT_SLOTS = ("a", "b")


def _warmed_up(problem):
    """Compile numba kernels once per node (the others then load numba's cache)."""
    if isinstance(problem, IsingProblem):
        from ..kernels.ising import warm_up
        warm_up()
    return problem


def _sample_position(campaign: TemperCampaign, round_no: int) -> int:
    cfg = campaign.config
    return (round_no - cfg.burn_in) // cfg.thin


class _Writer:
    """Rank 0 (or every rank with parallel HDF5): rows and checkpoints into the file."""

    def __init__(self, store: ResultStore, campaign: TemperCampaign, progress: Progress,
                 writes: bool):
        self.store, self.campaign, self.progress = store, campaign, progress
        self.writes = writes
        self.round_dtype = schema.with_status(campaign.record_dtype)
        self.rounds: list[np.ndarray] = []
        self.samples: list[np.ndarray] = []
        self.clock = FlushClock()
        self.valid = None

    def on_round(self, record: np.ndarray) -> None:
        self.rounds.append(record)
        self.progress.update(1, float(record["best_energy"][0]))
        if self.clock.due():
            self.flush()

    def on_sample(self, sample: np.ndarray) -> None:
        self.samples.append(sample)

    def flush(self) -> None:
        if not self.writes:
            self.rounds.clear()
            self.samples.clear()
            return
        if self.rounds:
            self.store.write_rows(ROUNDS, schema.as_rows(np.concatenate(self.rounds),
                                                         self.round_dtype))
            self.rounds.clear()
        if self.samples:
            rows = np.concatenate(self.samples)
            pos = [_sample_position(self.campaign, int(r)) for r in rows["task_id"]]
            self.store.write_rows(SAMPLES, rows, positions=np.array(pos))
            self.samples.clear()
        self.store.flush()
        self.clock.wrote()

    def on_checkpoint(self, ck: dict) -> None:
        """Rows first, then the older slot's arrays, then its valid round: crash-safe order."""
        self.flush()
        if not self.writes:
            return
        valid = self.store.read_array("checkpoint/valid")
        slot = int(np.argmin(valid))
        name = CHECKPOINT_SLOTS[slot]
        for key, value in ck.items():
            self.store.write_array(f"checkpoint/{name}/{key}", value)
        self.store.flush()
        valid[slot] = int(ck["round"])
        self.store.write_array("checkpoint/valid", valid)
        self.store.flush()


def check_checkpoint(path: Path) -> None:
    """--resume: the file's newest checkpoint is one this version continues (rank 0)."""
    with h5py.File(path, "r", locking=False) as f:
        valid = f.get("checkpoint/valid")
        if valid is None or np.max(valid[()]) < 0:
            return
        name = CHECKPOINT_SLOTS[int(np.argmax(valid[()]))]
        found = f.get(f"checkpoint/{name}/format")
        version = int(found[()]) if found is not None else None
    if version != CHECKPOINT_FORMAT:
        raise ResultFileError(f"{path}: its checkpoint has format {version}, this hpcopt "
                              f"continues format {CHECKPOINT_FORMAT} only (written by another "
                              "version): finish it with that version, or start over with --force")


def load_checkpoint(store: ResultStore) -> dict | None:
    """The newest complete checkpoint of the file (rank 0), or None if none was written."""
    valid = store.read_array("checkpoint/valid")
    if valid is None or valid.max() < 0:
        return None
    name = CHECKPOINT_SLOTS[int(np.argmax(valid))]
    group = store.file[f"checkpoint/{name}"]
    return {key: group[key][()] for key in group}


def run_temper(session: Session) -> RunOutcome:
    """The tempering campaign on every rank (the kind's run)."""
    world, plan, store = session.world, session.plan, session.store
    cfg: TemperConfig = plan.config
    apply_on_workers(world, Resources(), rank0_evaluates=True)   # one BLAS thread per rank
    problem = world.node_first(lambda: _warmed_up(make_problem(cfg.problem, cfg.source)))
    owned = replicas_of_rank(cfg.n_replicas, world.size, world.rank)
    collective = MpiCollective(world, cfg.n_replicas)
    checkpoint = None
    if plan.resume:
        old_rounds = (plan.previous or {}).get("temper", {}).get("rounds", cfg.rounds)
        if old_rounds < cfg.rounds:           # more rounds: longer tables (extend.py)
            extend_file(store, old_rounds, cfg)
        checkpoint = world.bcast(load_checkpoint(store) if world.is_root else None)
    campaign = TemperCampaign(cfg, problem, seed=plan.seed, owned=list(owned),
                              collective=collective, checkpoint=checkpoint)
    writer_ck = None
    if not plan.resume:
        template = campaign.checkpoint()   # collective: shapes of the checkpoint datasets
        arrays = {f"checkpoint/{s}/{k}": v for s in CHECKPOINT_SLOTS for k, v in template.items()}
        arrays["checkpoint/valid"] = np.array([-1, -1], dtype=np.int64)
        n = cfg.n_replicas
        tables = {ROUNDS: TableSpec(schema.with_status(campaign.record_dtype), cfg.rounds,
                                    {"n_replicas": n, "problem": cfg.problem.name}),
                  SAMPLES: TableSpec(campaign.sample_dtype, n_samples(cfg),
                                     {"param_names": list(getattr(problem, "param_names", None)
                                                          or [])}),
                  "pairs": TableSpec(PAIR_DTYPE, max(n - 1, 0)),
                  "replicas": TableSpec(REPLICA_DTYPE, n),
                  "slots": TableSpec(SLOT_DTYPE, n)}
        session.create(tables=tables, arrays=arrays,
                       attrs=getattr(getattr(problem, "fit", None), "result_attrs", {}))
        writer_ck = template      # a fresh file already holds the start state as a checkpoint
    progress = session.start_progress(cfg.rounds, done=campaign.round, label="temper",
                                      unit="round")
    writer = _Writer(store, campaign, progress, writes=world.is_root and store.holds_file)
    if writer_ck is not None:
        writer.on_checkpoint(writer_ck)
    status = "complete"
    every = plan.run.checkpoint_every   # 0: on rank 0's clock (campaign.CheckpointClock)
    clock = CheckpointClock() if world.is_root and not every else None
    if not campaign.done:
        status = campaign.run(on_round=writer.on_round, on_sample=writer.on_sample,
                              should_stop=_stop_code, checkpoint_every=every,
                              on_checkpoint=writer.on_checkpoint, checkpoint_clock=clock)
    writer.flush()
    summary = campaign.summary()          # collective, identical on every rank
    collective.close()
    if world.is_root and store.holds_file:
        store.write_rows("pairs", summary.pairs)
        store.write_rows("replicas", summary.replicas)
        store.write_rows("slots", summary.slots)
    best_params = _state_params(problem, summary.best_state)
    best = {"params": best_params, "objective": summary.best_energy,
            "replica": summary.best_replica, "round": summary.best_round}
    log_z_attrs = {name: float(v) for method, names in LOG_Z_ATTRS.items()
                   for name, v in zip(names, summary.log_z[method])}
    attrs = {**log_z_attrs, FINAL_ATTR: summary.rounds_done,
             "temperatures": summary.temperatures.tolist()}
    return RunOutcome(status, {"rounds": cfg.rounds, "rounds_done": summary.rounds_done,
                               "best_energy": summary.best_energy, "best_params": best_params,
                               "pairs": summary.pairs, "log_z": summary.log_z},
                      best=best, attrs=attrs,
                      signal=_signal_name(campaign.stop_code) or stop_signal_name())


def _stop_code() -> int:
    """This rank's stop request for the round's gather: the signal's number, 0 for none."""
    name = stop_signal_name()
    return int(signal.Signals[name]) if name else 0


def _signal_name(code: int) -> str | None:
    """The signal that stopped the campaign on whichever rank received it."""
    try:
        return signal.Signals(code).name if code else None
    except ValueError:
        return None


def _state_params(problem, state: np.ndarray) -> dict:
    names = getattr(problem, "param_names", None)
    if names:
        return {n: float(v) for n, v in zip(names, np.ravel(state))}
    return {"spins": np.asarray(state).astype(int).tolist()}


def format_summary(s: dict) -> str:
    """The run summary (rank 0)."""
    lines = [f"results: {s['path']} ({s['status']}; {s['rounds_done']}/{s['rounds']} rounds; "
             f"{s['elapsed']:.1f} s)",
             f"best: energy {s['best_energy']:.10g}"]
    if "spins" not in s["best_params"]:
        lines += [f"  {k} = {v:.10g}" for k, v in s["best_params"].items()]
    pairs = s["pairs"]
    if len(pairs):
        acc = ", ".join(f"{a:.2f}" for a in pairs["acceptance"])
        lines.append(f"neighbour swap acceptance: {acc}")
    lines += log_z_lines(s["log_z"])
    return "\n".join(lines)

