"""The HPO campaign on the task farm: its config object, run, source (rank 0) and evaluator.

The task farm carries trials: rank 0 asks the :class:`HpoPolicy` for trials whenever a
worker has room and tells it each outcome as it arrives (no generation barrier); workers
send intermediate values (REPORT) and get the prune decision back.  The study lives in
the Optuna storage (by default an NFS-safe journal next to the result file, see
docs/hpo-storage.md), so array tasks on other nodes can join one study (they name it:
``--storage``/``--study-name``); each process writes its own HDF5 file, from rank 0
alone (one writer, growable table).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..campaign.contract import CampaignPlan, PlanSource, RunOutcome, Session
from ..campaign.resume import plain
from ..farm import FarmOptions, Outcome, Task, run_dynamic
from ..mpi.runtime import stop_requested
from ..progress import Progress
from ..resources import Resources, apply_on_workers, parse_resources
from ..store import schema
from ..store.dtypes import OUTCOME_DTYPE, trials_dtype
from ..store.resultfile import FlushClock, ResultStore, TableSpec
from .config import HpoConfig, StorageSpec, parse_hpo_config, storage_spec
from .objective import make_runner
from .rows import trial_row, trial_row_fields
from .trials import TrialOutcome, TrialRecord, TrialSpec

TABLE = schema.MAIN_TABLE["hpo"]
STATUS_OF_STATE = {"complete": schema.OK, "pruned": schema.PRUNED, "failed": schema.FAILED}
#: [hpo] keys that do not change what a study computes (left out of the canonical form)
OPERATIONAL_KEYS = ("storage", "study_name", "max_concurrent")


@dataclass(frozen=True)
class HpoCampaign:
    """The HPO kind's validated config: the tables, plus how this process joins the study."""

    hpo: HpoConfig
    resources: Resources = Resources()
    stream: int = 0        # the SLURM array task id (0 otherwise): sampler stream of this process
    join: bool = False     # join an existing study (--resume, or an array task)
    fresh: bool = False    # --force: a new study replaces the default journal of this output
    default_storage: bool = True   # the storage is this result file's own journal


def array_task_id() -> int:
    return int(os.environ.get("SLURM_ARRAY_TASK_ID", "0") or 0)


def in_array_job() -> bool:
    return "SLURM_ARRAY_TASK_ID" in os.environ


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """--storage / --study-name (Optuna's CLI names): array tasks name their shared study."""
    parser.add_argument("--storage", metavar="STORAGE",
                        help="the Optuna storage of the study (a journal file path, an RDB URL "
                             "or 'memory'), overriding [hpo] storage; default: FILE.journal "
                             "next to the result file")
    parser.add_argument("--study-name", metavar="NAME", dest="study_name",
                        help="the study name, overriding [hpo] study_name; default: the result "
                             "file's stem")


def parse_hpo_campaign(src: PlanSource) -> HpoCampaign:
    """[hpo], [objective], [space] and [resources], with the companion files derived from
    the result file (paths) and the command-line overrides of the study."""
    root, cf = src.root, src.file
    hpo = parse_hpo_config(root, cf.source, cf.base_dir, output_path=src.paths.output)
    settings = hpo.hpo
    storage_option = src.options.get("storage")
    if storage_option:
        settings = replace(settings, storage=storage_spec(storage_option, Path.cwd()))
    if src.options.get("study_name"):
        settings = replace(settings, study_name=src.options["study_name"])
    hpo = replace(hpo, hpo=settings)
    resources = parse_resources(root, cf.source) if "resources" in root else Resources()
    default = (settings.storage.kind == "journal"
               and Path(settings.storage.location) == src.paths.journal)
    return HpoCampaign(hpo, resources, array_task_id(), src.resume or in_array_job(),
                       fresh=src.force and default, default_storage=default)


def hpo_canonical(cfg: HpoCampaign) -> dict:
    settings = plain(cfg.hpo.hpo)
    for key in OPERATIONAL_KEYS:
        settings.pop(key, None)
    objective = plain(cfg.hpo.objective)
    for key in ("workdir", "config_dir"):       # where trials run, not what they compute
        objective.pop(key, None)
    return {"hpo": settings, "space": plain(cfg.hpo.space), "objective": objective}


def run_hpo(session: Session) -> RunOutcome:
    """The HPO campaign on every rank (the kind's run): rank 0 drives the study."""
    world, plan, store, table = session.world, session.plan, session.store, TABLE
    cfg: HpoCampaign = plan.config
    settings = cfg.hpo.hpo
    source = None
    if world.is_root:
        from .policy import HpoPolicy
        if not plan.resume:
            session.create(tables={table: TableSpec(
                table_dtype(cfg.hpo), settings.n_trials * (1 + settings.max_retries), {
                    "direction": settings.direction, "sampler": settings.sampler,
                    "pruner": settings.pruner, "study_name": settings.study_name,
                    "storage": storage_text(settings.storage), "array_task": cfg.stream},
                growable=True)})
        policy = HpoPolicy.from_config(cfg.hpo, seed=plan.seed, stream=cfg.stream,
                                       n_workers=max(world.size - 1, 1), resume=cfg.join,
                                       result_file=str(plan.paths.output),
                                       has_workers=world.size > 1)
        next_row, known, counted = 0, set(), 0
        if plan.resume:
            status = store.read_column(table, "status")
            next_row = int(np.count_nonzero(status != schema.PENDING))
            known = set(store.read_column(table, "task_id")[:next_row].tolist())
            counted = next_row - int(np.count_nonzero(store.read_column(table, "retried")
                                                      [:next_row]))
        progress = session.start_progress(settings.n_trials, done=counted, label="hpo",
                                          unit="trial")
        source = HpoSource(policy, cfg.hpo, store, progress, next_row)
        if plan.resume:  # finished trials the file missed (in the storage, not yet in HDF5);
            # only this file's own: a sibling array task's trials are in its own file
            source.add([r for r in policy.finished_records(str(plan.paths.output))
                        if r.number not in known])
    stats = run_trials(session, source, lambda w: HpoEvaluator(cfg.hpo, w))
    if not world.is_root:
        return RunOutcome("interrupted" if stats.interrupted else "complete", {})
    best = source.policy.best()
    failed = source.policy.storage_error
    summary = {"best": best, "n_rows": source.next_row, "study": settings.study_name,
               "storage": storage_text(settings.storage),
               "stop_reason": source.policy.stop_reason}
    c = source.counts
    return RunOutcome("interrupted" if stats.interrupted or failed else "complete", summary,
                      best=None if best is None else {"params": best[0], "objective": best[1]},
                      n_ok=c["complete"] + c["pruned"], n_failed=c["failed"],
                      first_error=source.first_error)


def run_trials(session: Session, source, build):
    """Trials (or PBT segments) on the task farm, one per message and none queued ahead
    (a trial sent is a trial started: the policy decides as late as it can), except for
    samplers that ignore the history (policy.queues_ahead): one or, with short trials, two
    queued on each worker (policy.worker_window held at most); rank 0 then
    closes the policy (running trials re-queued) and writes the last rows. `build(worker)`
    makes a rank's evaluator."""
    world, plan = session.world, session.plan
    apply_on_workers(world, plan.config.resources)
    evaluator = make_evaluator(plan, world, build)
    ahead = world.is_root and source.policy.queues_ahead
    options = FarmOptions(chunk_size=1, max_retries=0, task_timeout=None, prefetch=ahead,
                          prefetch_limit=source.policy.worker_window if ahead else None)
    stats = run_dynamic(world, source=source, evaluator=evaluator, dtype=OUTCOME_DTYPE,
                        options=options)
    if world.is_root:
        source.add(source.policy.close("stopped by a signal" if stats.interrupted else "done"))
        source.write()
    return stats


def make_evaluator(plan: CampaignPlan, world, build):
    """This rank's trial evaluator: ``build(worker)`` in process, or a child process
    (``[run] isolation = "process"``) that rebuilds it through the kind's
    sandbox_evaluator()."""
    worker = f"rank {world.rank} on {world.host}"
    if plan.run.isolation != "process":
        return build(worker)
    from ..sandbox import SandboxEvaluator
    limit = plan.config.hpo.hpo.trial_timeout
    spec = {"kind": plan.kind, "config": str(plan.file.path.resolve()),
            "output": str(plan.paths.output), "options": plan.options, "worker": worker}
    # the child enforces trial_timeout itself; the sandbox kills a child stuck beyond it
    return SandboxEvaluator(spec, timeout=None if limit is None else 1.5 * limit + 5.0)


def table_dtype(hpo: HpoConfig) -> np.dtype:
    """The trials table of a study's space (store.dtypes.trials_dtype)."""
    return trials_dtype(trial_row_fields(hpo.space))


class HpoEvaluator:
    """Worker side: run one trial (Python callable or external command)."""

    def __init__(self, hpo: HpoConfig, worker: str):
        self.runner = make_runner(hpo)
        self.worker = worker

    def inputs(self, task: Task) -> dict:
        return {}

    def evaluate(self, task: Task, report) -> Outcome:
        spec = TrialSpec.from_dict(task.payload)
        now = time.time()
        if spec.start_by is not None and now >= spec.start_by:
            # queued behind a trial that ended after the time budget: not started, so
            # re-queued in the study like a trial stopped by a signal
            outcome = TrialOutcome(spec.number, "failed", None,
                                   "not started: the time budget ended while it was queued",
                                   now, 0.0, self.worker, interrupted=True)
        else:
            outcome = self.runner(spec, report, worker=self.worker)
        status = STATUS_OF_STATE[outcome.state]
        return Outcome(status, {"outcome": json.dumps(outcome.to_dict(), default=str)},
                       outcome.error or "")


class HpoSource:
    """Rank 0: the policy's asks become tasks, results are told, records become rows."""

    def __init__(self, policy, hpo: HpoConfig, store: ResultStore, progress: Progress,
                 next_row: int):
        self.policy, self.hpo, self.store, self.progress = policy, hpo, store, progress
        self.dtype = table_dtype(hpo)
        self.next_row = next_row
        self.rank_of: dict[int, int] = {}
        self.unflushed: list[dict] = []     # rows whose storage operations may not be written
        self.pending_rows: list[dict] = []  # rows to write (their trials are in the storage)
        self.counts = {"complete": 0, "pruned": 0, "failed": 0}   # this run's rows by state
        self.first_error = ""
        self.clock = FlushClock()
        self.sign = -1.0 if hpo.hpo.direction == "maximize" else 1.0

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
            row = trial_row(rec, self.hpo.space, self.rank_of.pop(rec.number, -1))
            row["objective"] = row.pop("value")
            row["status"] = STATUS_OF_STATE[rec.state]
            self.unflushed.append(row)
            self.counts[rec.state] += 1
            if rec.state == "failed" and not self.first_error:
                self.first_error = (rec.error or "").strip().split("\n")[0] or "(no message)"
            value = row["objective"]
            if rec.retried:      # runs again: not a trial of the budget
                self.progress.retry()
            else:
                self.progress.update(1, self.sign * value if rec.state == "complete"
                                     and math.isfinite(value) else None)
        # written by tick(), which the farm calls after it has answered the messages in
        # hand: the journal's fsync and the HDF5 write never delay a worker's next trial

    def write(self) -> None:
        """Rows to the result file, after the storage holds their trials (group commit: a
        row never claims a trial that a resume would run again)."""
        if self.policy.flush():
            self.pending_rows += self.unflushed
        self.unflushed.clear()            # after a storage failure: re-run on resume
        if self.pending_rows:
            names = self.dtype.names
            rows = np.array([tuple(row[n] for n in names) for row in self.pending_rows],
                            dtype=self.dtype)
            positions = np.arange(self.next_row, self.next_row + len(rows))
            self.store.write_rows(TABLE, rows, positions=positions)
            self.next_row += len(rows)
            self.pending_rows.clear()
            self.store.flush()
        self.clock.wrote()


def storage_text(spec: StorageSpec) -> str:
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

