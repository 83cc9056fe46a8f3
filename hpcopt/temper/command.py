"""`hpcopt temper CONFIG`: the tempering policy on MPI ranks, recorded in HDF5.

Every rank owns a contiguous block of replicas and runs the same
:class:`TemperCampaign`; the only collective is an Iallgatherv per round
(:class:`hpcopt.mpi.collective.MpiCollective`).  Rank 0 writes the per-round
records, the T_min samples and double-buffered checkpoints (slot a/b, the
valid round of each written last), so a job killed at any moment resumes
from the newest complete checkpoint and continues bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import (ConfigFile, OutputConfig, RunConfig, check_tables, config_hash,
                      open_config, parse_output, parse_run)
from ..errors import ConfigError
from ..mpi.collective import MpiCollective
from ..mpi.runtime import World, get_world, stop_requested, stop_signal_name
from ..progress import Progress
from ..resources import Resources, apply_on_workers
from ..store import schema
from ..store.resultfile import (FlushClock, ResultStore, TableSpec, check_existing,
                                check_new_output)
from .campaign import TemperCampaign
from .collective import replicas_of_rank
from .config import TemperConfig, parse_temper_config
from .problems import IsingProblem, make_problem
from .stats import PAIR_DTYPE, REPLICA_DTYPE, SLOT_DTYPE

TABLES = ("temper", "problem", "output", "run", "slurm")
ROUNDS, SAMPLES = "rounds", "samples"
CHECKPOINT_SLOTS = ("a", "b")
DEFAULT_CHECKPOINT_EVERY = 10


@dataclass(frozen=True)
class TemperPlan:
    file: ConfigFile
    temper: TemperConfig
    output: OutputConfig
    run: RunConfig

    @property
    def hash(self) -> str:
        return config_hash({"temper": dataclasses.asdict(self.temper), "seed": self.run.seed})

    @property
    def checkpoint_every(self) -> int:
        return self.run.checkpoint_every or DEFAULT_CHECKPOINT_EVERY


def prepare(config: Path, output: str | None, resume: bool, force: bool) -> TemperPlan:
    root, cf = open_config(config)
    check_tables(root, TABLES, "temper")
    temper = parse_temper_config(root, cf.source, cf.base_dir)
    out = parse_output(root, cf, cf.path.stem + ".h5")
    if output:
        out = OutputConfig(Path(output))
    run = parse_run(root)
    if "slurm" in root:
        from ..slurm import parse_slurm_config
        parse_slurm_config(root, cf.source)
    root.finish()
    make_problem(temper.problem, cf.source)        # imports, data, finite start energy
    size = get_world().size
    if temper.n_replicas < size:
        raise ConfigError(f"{temper.n_replicas} replicas cannot fill {size} ranks: every rank "
                          "advances at least one replica; use more replicas or fewer ranks",
                          key="temper.replicas", source=cf.source)
    plan = TemperPlan(cf, temper, out, run)
    if resume:
        check_existing(out.path, kind="temper", config_hash=plan.hash)
    else:
        check_new_output(out.path, force=force)
    return plan


def _warmed_up(problem):
    """Compile numba kernels once per node (the others then load numba's cache)."""
    if isinstance(problem, IsingProblem):
        from ..kernels.ising import warm_up
        warm_up()
    return problem


def _n_samples(campaign: TemperCampaign) -> int:
    return sum(1 for r in range(campaign.config.rounds) if campaign.sample_due(r))


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


def load_checkpoint(store: ResultStore) -> dict | None:
    """The newest complete checkpoint of the file (rank 0), or None if none was written."""
    valid = store.read_array("checkpoint/valid")
    if valid is None or valid.max() < 0:
        return None
    name = CHECKPOINT_SLOTS[int(np.argmax(valid))]
    group = store.file[f"checkpoint/{name}"]
    return {key: group[key][()] for key in group}


def run_temper(world: World, plan: TemperPlan, *, resume: bool, quiet: bool = False) -> dict:
    cfg = plan.temper
    apply_on_workers(world, Resources(), rank0_evaluates=True)   # one BLAS thread per rank
    problem = world.node_first(lambda: _warmed_up(make_problem(cfg.problem, plan.file.source)))
    owned = replicas_of_rank(cfg.n_replicas, world.size, world.rank)
    collective = MpiCollective(world, cfg.n_replicas)
    store = ResultStore(world, plan.output.path)
    checkpoint = None
    if resume:
        store.resume(world_size=world.size)
        checkpoint = world.bcast(load_checkpoint(store) if world.is_root else None)
    campaign = TemperCampaign(cfg, problem, seed=plan.run.seed, owned=list(owned),
                              collective=collective, checkpoint=checkpoint)
    if not resume:
        template = campaign.checkpoint()   # collective: shapes of the checkpoint datasets
        arrays = {f"checkpoint/{s}/{k}": v for s in CHECKPOINT_SLOTS for k, v in template.items()}
        arrays["checkpoint/valid"] = np.array([-1, -1], dtype=np.int64)
        n = cfg.n_replicas
        tables = {ROUNDS: TableSpec(schema.with_status(campaign.record_dtype), cfg.rounds,
                                    {"n_replicas": n, "problem": cfg.problem.name}),
                  SAMPLES: TableSpec(campaign.sample_dtype, _n_samples(campaign),
                                     {"param_names": list(getattr(problem, "param_names", None)
                                                          or [])}),
                  "pairs": TableSpec(PAIR_DTYPE, max(n - 1, 0)),
                  "replicas": TableSpec(REPLICA_DTYPE, n),
                  "slots": TableSpec(SLOT_DTYPE, n)}
        store.create(kind="temper", config_text=plan.file.text, config_hash=plan.hash,
                     seed=plan.run.seed, tables=tables, arrays=arrays,
                     attrs={"config_path": str(plan.file.path.resolve()),
                            **getattr(getattr(problem, "fit", None), "result_attrs", {})})
        # a fresh file already holds the start state as a valid checkpoint
        writer_ck = template
    else:
        writer_ck = None
    progress = Progress(cfg.rounds, label="temper", quiet=quiet or not world.is_root,
                        done=campaign.round)
    writer = _Writer(store, campaign, progress, writes=world.is_root and store.holds_file)
    if writer_ck is not None:
        writer.on_checkpoint(writer_ck)
    t0 = time.monotonic()
    status = "complete"
    if not campaign.done:
        status = campaign.run(on_round=writer.on_round, on_sample=writer.on_sample,
                              should_stop=stop_requested, checkpoint_every=plan.checkpoint_every,
                              on_checkpoint=writer.on_checkpoint)
    writer.flush()
    progress.close()
    summary = campaign.summary()          # collective, identical on every rank
    if world.is_root and store.holds_file:
        store.write_rows("pairs", summary.pairs)
        store.write_rows("replicas", summary.replicas)
        store.write_rows("slots", summary.slots)
    best_params = _state_params(problem, summary.best_state)
    store.set_attrs("best", {"params": best_params, "objective": summary.best_energy,
                             "replica": summary.best_replica, "round": summary.best_round})
    store.set_attrs("/", {"log_z_ratio": summary.log_z_ratio, "rounds_done": summary.rounds_done,
                          "temperatures": summary.temperatures.tolist(),
                          "elapsed_last_run": time.monotonic() - t0})
    store.close(status)
    return {"status": status, "path": str(plan.output.path), "rounds": cfg.rounds,
            "rounds_done": summary.rounds_done, "best_energy": summary.best_energy,
            "best_params": best_params, "pairs": summary.pairs, "log_z_ratio": summary.log_z_ratio,
            "elapsed": time.monotonic() - t0, "signal": stop_signal_name()}


def _state_params(problem, state: np.ndarray) -> dict:
    names = getattr(problem, "param_names", None)
    if names:
        return {n: float(v) for n, v in zip(names, np.ravel(state))}
    return {"spins": np.asarray(state).astype(int).tolist()}


def format_summary(s: dict) -> str:
    lines = [f"results: {s['path']} ({s['status']}; {s['rounds_done']}/{s['rounds']} rounds; "
             f"{s['elapsed']:.1f} s)",
             f"best: energy {s['best_energy']:.10g}"]
    if "spins" not in s["best_params"]:
        lines += [f"  {k} = {v:.10g}" for k, v in s["best_params"].items()]
    pairs = s["pairs"]
    if len(pairs):
        acc = ", ".join(f"{a:.2f}" for a in pairs["acceptance"])
        lines.append(f"neighbour swap acceptance: {acc}")
    if math.isfinite(s["log_z_ratio"]):
        lines.append(f"log Z(T_min) - log Z(T_max) (thermodynamic integration): "
                     f"{s['log_z_ratio']:.6g}")
    return "\n".join(lines)


run = run_temper
