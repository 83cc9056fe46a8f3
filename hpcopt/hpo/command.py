"""`hpcopt hpo CONFIG`: the Optuna policy on rank 0, trials on the worker ranks.

The task farm carries trials: rank 0 asks the :class:`HpoPolicy` for trials
whenever a worker has room and tells it each outcome as it arrives (no
generation barrier); workers send intermediate values (REPORT) and get the
prune decision back.  The study lives in the Optuna storage (an NFS-safe
journal file by default, see docs/hpo-storage.md), so array tasks on other
nodes join the same study; each process writes its own HDF5 file.  HDF5 is
written by rank 0 alone (serial h5py even where h5py has MPI: one writer,
growable table).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..errors import ConfigError
from ..config import (ConfigFile, OutputConfig, RunConfig, check_tables, config_hash,
                      open_config, parse_output, parse_run)
from ..farm import FarmOptions, Outcome, Task, run_dynamic
from ..mpi.runtime import World, stop_requested, stop_signal_name
from ..progress import Progress
from ..resources import Resources, apply_on_workers, parse_resources
from ..store import schema
from ..store.resultfile import (FlushClock, ResultStore, TableSpec, check_existing,
                                check_new_output)
from .config import HpoConfig, parse_hpo_config
from .objective import make_runner
from .rows import trial_row, trial_row_fields
from .trials import TrialOutcome, TrialRecord, TrialSpec

TABLES = ("hpo", "objective", "space", "output", "run", "slurm", "resources")
TABLE = schema.MAIN_TABLE["hpo"]
STATUS_OF_STATE = {"complete": schema.OK, "pruned": schema.PRUNED, "failed": schema.FAILED}
#: what a worker sends back through the farm: the outcome as JSON text
TRANSPORT_DTYPE = np.dtype(schema.common_columns() + [("outcome", h5py.string_dtype())])
_KIND_DTYPES = {"int": "<i8", "float": "<f8", "str": h5py.string_dtype()}


@dataclass(frozen=True)
class HpoPlan:
    file: ConfigFile
    hpo: HpoConfig
    output: OutputConfig
    run: RunConfig
    stream: int            # the SLURM array task id (0 otherwise): sampler stream of this process
    join: bool             # join an existing study (--resume, or an array task)
    resources: Resources = Resources()
    fresh: bool = False    # --force: a new study replaces the default journal next to the output

    @property
    def hash(self) -> str:
        return config_hash({"text": self.file.text, "seed": self.run.seed})


def array_task_id() -> int:
    return int(os.environ.get("SLURM_ARRAY_TASK_ID", "0") or 0)


def prepare(config: Path, output: str | None, resume: bool, force: bool) -> HpoPlan:
    root, cf = open_config(config)
    check_tables(root, TABLES, "hpo")
    out = out_config = parse_output(root, cf, cf.path.stem + ".h5")
    # the study name and journal default to the config's [output] path, not to -o: array
    # tasks write one result file each (-o) and must still share one study
    hpo = parse_hpo_config(root, cf.source, cf.base_dir, output_path=out.path)
    if output:
        out = OutputConfig(Path(output).resolve())
    run = parse_run(root)
    if "slurm" in root:
        from ..slurm import parse_slurm_config
        parse_slurm_config(root, cf.source)
    resources = parse_resources(root, cf.source) if "resources" in root else Resources()
    root.finish()
    from .storage import check_storage
    check_storage(hpo.hpo.storage, cf.source)
    if hpo.hpo.scheduler == "pbt":
        from .pbt_runner import load_pbt_objective
        load_pbt_objective(hpo)                  # wrong signature or import: exit 2
        if "SLURM_ARRAY_TASK_ID" in os.environ:
            raise ConfigError("scheduler = \"pbt\" keeps one population in one result file: "
                              "run it as one job (--template single or mpirun), not an array",
                              key="hpo.scheduler", source=cf.source)
    elif hpo.objective.function is not None:
        from .objective import load_objective
        load_objective(hpo)                      # import errors are config errors (exit 2)
    default_journal = str(out_config.path.with_name(out_config.path.name + ".journal"))
    fresh = force and hpo.hpo.storage.kind == "journal" and \
        hpo.hpo.storage.location == default_journal
    plan = HpoPlan(cf, hpo, out, run, array_task_id(),
                   resume or "SLURM_ARRAY_TASK_ID" in os.environ, resources, fresh)
    if resume:
        check_existing(out.path, kind="hpo", config_hash=plan.hash)
    else:
        check_new_output(out.path, force=force)
    return plan


def trial_root(output: Path) -> Path:
    """Where external-command trials get their folders: next to the result file."""
    return output.parent / f"{output.stem}_trials"


def sandbox_evaluator(spec: dict):
    """The evaluator inside an isolated child process (hpcopt.sandbox)."""
    root, cf = open_config(spec["config"])
    out = parse_output(root, cf, cf.path.stem + ".h5")
    hpo = parse_hpo_config(root, cf.source, cf.base_dir, output_path=out.path)
    if hpo.hpo.scheduler == "pbt":
        from .pbt_campaign import PbtEvaluator
        return PbtEvaluator(hpo, spec["worker"])
    return HpoEvaluator(hpo, Path(spec["output"]), spec["worker"])


def make_evaluator(plan: HpoPlan, world: World):
    """This rank's trial evaluator: in process, or in a child process (isolation) that
    rebuilds it through sandbox_evaluator()."""
    worker = f"rank {world.rank} on {world.host}"
    if plan.run.isolation != "process":
        if plan.hpo.hpo.scheduler == "pbt":
            from .pbt_campaign import PbtEvaluator
            return PbtEvaluator(plan.hpo, worker)
        return HpoEvaluator(plan.hpo, plan.output.path, worker)
    from ..sandbox import SandboxEvaluator
    limit = plan.hpo.hpo.trial_timeout
    spec = {"kind": "hpo", "config": str(plan.file.path.resolve()),
            "output": str(plan.output.path.resolve()), "worker": worker}
    # the child enforces trial_timeout itself; the sandbox kills a child stuck beyond it
    return SandboxEvaluator(spec, timeout=None if limit is None else 1.5 * limit + 5.0)


def table_dtype(hpo: HpoConfig) -> np.dtype:
    """The trials table: task_id, status, then the rows.py columns ('value' as 'objective')."""
    fields = [("task_id", "<i8"), ("status", schema.status_dtype)]
    for name, kind in trial_row_fields(hpo.space)[1:]:
        fields.append(("objective" if name == "value" else name, _KIND_DTYPES[kind]))
    return np.dtype(fields)


class HpoEvaluator:
    """Worker side: run one trial (Python callable or external command)."""

    def __init__(self, hpo: HpoConfig, output: Path, worker: str):
        self.runner = make_runner(hpo, trial_root(output))
        self.worker = worker

    def inputs(self, task: Task) -> dict:
        return {}

    def evaluate(self, task: Task, report) -> Outcome:
        spec = TrialSpec.from_dict(task.payload)
        outcome = self.runner(spec, report, worker=self.worker)
        status = STATUS_OF_STATE[outcome.state]
        return Outcome(status, {"outcome": json.dumps(outcome.to_dict(), default=str)},
                       outcome.error or "")


class HpoSource:
    """Rank 0: the policy's asks become tasks, results are told, records become rows."""

    def __init__(self, policy, plan: HpoPlan, store: ResultStore, progress: Progress,
                 next_row: int):
        self.policy, self.plan, self.store, self.progress = policy, plan, store, progress
        self.dtype = table_dtype(plan.hpo)
        self.next_row = next_row
        self.rank_of: dict[int, int] = {}
        self.unflushed: list[dict] = []     # rows whose storage operations may not be written
        self.pending_rows: list[dict] = []  # rows to write (their trials are in the storage)
        self.clock = FlushClock()
        self.sign = -1.0 if plan.hpo.hpo.direction == "maximize" else 1.0

    # -- TaskSource ------------------------------------------------------------------------
    def next_task(self) -> Task | None:
        spec = None if stop_requested() else self.policy.ask()
        self.add(self.policy.drain_records())
        return None if spec is None else Task(spec.number, payload=spec.to_dict())

    def exhausted(self) -> bool:
        done = stop_requested() or self.policy.done
        self.add(self.policy.drain_records())
        return done

    def on_results(self, rows: np.ndarray) -> None:
        for r in rows:
            number = int(r["task_id"])
            self.rank_of[number] = int(r["rank"])
            text = r["outcome"]
            if text:
                outcome = TrialOutcome.from_dict(json.loads(text))
            else:  # the farm caught an error outside the runner (e.g. its own timeout)
                outcome = TrialOutcome(number, "failed", None, schema.decode_message(r["message"]),
                                       float(r["t_start"]), float(r["wall"]),
                                       f"rank {int(r['rank'])}")
            self.add(self.policy.tell_result(outcome))

    def on_report(self, task_id: int, step: int, value: float) -> bool:
        return bool(self.policy.report(task_id, step, value))

    def tick(self) -> None:
        self.policy.heartbeat()
        if self.clock.due():
            self.write()

    # -- rows --------------------------------------------------------------------------------
    def add(self, records: list[TrialRecord]) -> None:
        for rec in records:
            row = trial_row(rec, self.plan.hpo.space, self.rank_of.pop(rec.number, -1))
            row["objective"] = row.pop("value")
            row["status"] = STATUS_OF_STATE[rec.state]
            self.unflushed.append(row)
            value = row["objective"]
            self.progress.update(1, self.sign * value if rec.state == "complete"
                                 and math.isfinite(value) else None)
        if self.unflushed and self.clock.due():
            self.write()

    def write(self) -> None:
        """Rows to the result file, after the storage holds their trials (group commit: a
        row never claims a trial that a resume would run again)."""
        if self.policy.flush():
            self.pending_rows += self.unflushed
        self.unflushed.clear()            # after a storage failure: re-run on resume
        if self.pending_rows:
            rows = np.zeros(len(self.pending_rows), dtype=self.dtype)
            for i, row in enumerate(self.pending_rows):
                for name in self.dtype.names:
                    rows[i][name] = row[name]
            positions = np.arange(self.next_row, self.next_row + len(rows))
            self.store.write_rows(TABLE, rows, positions=positions)
            self.next_row += len(rows)
            self.pending_rows.clear()
            self.store.flush()
        self.clock.wrote()


def run_hpo(world: World, plan: HpoPlan, *, resume: bool, quiet: bool = False) -> dict:
    if plan.hpo.hpo.scheduler == "pbt":
        from .pbt_campaign import run_pbt
        return run_pbt(world, plan, resume=resume, quiet=quiet)
    settings = plan.hpo.hpo
    store = ResultStore(world, plan.output.path, parallel=False)
    dtype = table_dtype(plan.hpo)
    capacity = settings.n_trials * (1 + settings.max_retries)
    source = None
    t0 = time.monotonic()
    if world.is_root:
        from .policy import HpoPolicy
        if plan.fresh:
            Path(settings.storage.location).unlink(missing_ok=True)
        if resume:
            store.resume(world_size=world.size)
        else:
            store.create(kind="hpo", config_text=plan.file.text, config_hash=plan.hash,
                         seed=plan.run.seed,
                         tables={TABLE: TableSpec(dtype, capacity, {
                             "direction": settings.direction, "sampler": settings.sampler,
                             "pruner": settings.pruner, "study_name": settings.study_name,
                             "storage": storage_text(settings.storage), "array_task": plan.stream},
                             growable=True)},
                         attrs={"config_path": str(plan.file.path.resolve())})
        policy = HpoPolicy.from_config(plan.hpo, seed=plan.run.seed, stream=plan.stream,
                                       n_workers=max(world.size - 1, 1), resume=plan.join,
                                       result_file=str(plan.output.path),
                                       has_workers=world.size > 1)
        next_row, known = 0, set()
        if resume:
            status = store.read_column(TABLE, "status")
            next_row = int(np.count_nonzero(status != schema.PENDING))
            known = set(store.read_column(TABLE, "task_id")[:next_row].tolist())
        progress = Progress(settings.n_trials, label="hpo", quiet=quiet, done=next_row)
        source = HpoSource(policy, plan, store, progress, next_row)
        if resume:   # finished trials the file missed (written to the storage, not yet to HDF5);
            # only this file's own: a sibling array task's trials are in its own file
            source.add([r for r in policy.finished_records(str(plan.output.path))
                        if r.number not in known])
    apply_on_workers(world, plan.resources)
    evaluator = make_evaluator(plan, world)
    options = FarmOptions(chunk_size=1, max_retries=0, task_timeout=None, prefetch=False)
    stats = run_dynamic(world, source=source, evaluator=evaluator, dtype=TRANSPORT_DTYPE,
                        options=options)
    summary = {}
    if world.is_root:
        source.add(source.policy.close("stopped by a signal" if stats.interrupted else "done"))
        source.write()
        best = source.policy.best()
        failed = source.policy.storage_error
        status = "interrupted" if stats.interrupted or failed else "complete"
        if best is not None:
            params, value = best
            store.set_attrs("best", {"params": params, "objective": value})
        store.set_attrs("/", {"elapsed_last_run": time.monotonic() - t0})
        store.close(status)
        source.progress.close()
        summary = {"status": status, "path": str(plan.output.path), "best": best,
                   "n_rows": source.next_row, "elapsed": time.monotonic() - t0,
                   "signal": stop_signal_name() or ("a storage failure" if failed else None),
                   "study": settings.study_name, "storage": storage_text(settings.storage),
                   "stop_reason": source.policy.stop_reason}
    return summary


def storage_text(spec) -> str:
    """The storage as optuna-dashboard and the optuna CLI take it: a journal's plain path,
    a database URL, or "memory"."""
    return spec.location if spec.location else spec.kind


def format_summary(s: dict) -> str:
    lines = [f"results: {s['path']} ({s['status']}; {s['n_rows']} trials recorded; "
             f"{s['elapsed']:.1f} s); study {s['study']!r} in {s['storage']}"]
    if s.get("stop_reason"):
        lines.append(f"stopped: {s['stop_reason']}")
    if s["storage"] != "memory":
        lines.append(f"dashboard: optuna-dashboard {shlex.quote(s['storage'])}")
    if s["best"] is None:
        lines.append("best: none (no trial completed)")
    else:
        params, value = s["best"]
        lines.append(f"best: objective {value:.10g}")
        lines += [f"  {k} = {v!r}" for k, v in params.items()]
    return "\n".join(lines)


run = run_hpo
