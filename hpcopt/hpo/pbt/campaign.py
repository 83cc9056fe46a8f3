"""The PBT policy on the task farm: the farm's source (rank 0) and evaluator (workers).

Segments are the farm's tasks: rank 0 asks :class:`PbtPolicy` for the next segment of any
ready member whenever a worker is free and tells it each outcome as it arrives; the
workers run :func:`run_segment`. The result file's main table ("trials") holds one
lineage row per finished segment (:func:`lineage_dtype`), written by rank 0 in arrival
order; checkpoints live in ``<output stem>_pbt/`` next to it. ``--resume`` rebuilds the
policy from those rows and checkpoints (:meth:`PbtPolicy.from_rows`). The campaign
around it is hpcopt.hpo.pbt.kind.
"""

from __future__ import annotations

import json
import math
from typing import Callable

import numpy as np

from ...campaign.contract import RunOutcome, Session
from ...farm import Outcome, Task
from ...mpi.runtime import stop_requested
from ...progress import Progress
from ...store import schema
from ...store.resultfile import FlushClock, TableSpec
from ..campaign import HpoCampaign, run_trials
from .lineage import SegmentOutcome, SegmentRecord, lineage_dtype, lineage_rows
from .policy import PbtPolicy
from .runner import make_pbt_runner

TABLE = schema.MAIN_TABLE["hpo"]


class PbtEvaluator:
    """Worker side: run one segment; the outcome travels as JSON text."""

    def __init__(self, config, worker: str = ""):
        self.runner = make_pbt_runner(config)
        self.worker = worker

    def inputs(self, task: Task) -> dict:
        return {}

    def evaluate(self, task: Task, report) -> Outcome:
        # no report: PBT takes no decision inside a segment (saves a round trip per step)
        out = self.runner(task.payload, None, worker=self.worker)
        status = schema.OK if out["state"] == "complete" else schema.FAILED
        return Outcome(status, {"outcome": json.dumps(out)}, out["error"] or "")


class PbtSource:
    """Rank 0: segments become tasks, outcomes are told, records become lineage rows."""

    def __init__(self, policy: PbtPolicy, write_rows: Callable[[np.ndarray], None],
                 progress: Progress | None = None):
        self.policy, self.write_rows, self.progress = policy, write_rows, progress
        policy.defer_deletes = True
        self.pending: list[SegmentRecord] = []
        self.ranks: dict[int, int] = {}
        self.n_ok = self.n_failed = 0
        self.first_error = ""
        self.clock = FlushClock()
        self.sign = -1.0 if policy.direction == "maximize" else 1.0

    # -- TaskSource -------------------------------------------------------------------------
    def next_task(self) -> Task | None:
        spec = None if stop_requested() else self.policy.ask()
        return None if spec is None else Task(spec.task_id, payload=spec.to_dict())

    def exhausted(self) -> bool:
        return stop_requested() or self.policy.done

    def on_results(self, rows: np.ndarray) -> None:
        for r in rows:
            task_id = int(r["task_id"])
            self.ranks[task_id] = int(r["rank"])
            text = r["outcome"]
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            if text:
                outcome = SegmentOutcome.from_dict(json.loads(text))
            else:   # the farm caught an error outside the runner
                outcome = SegmentOutcome(task_id, "failed", None, -1,
                                         schema.decode_message(r["message"]) or "worker error",
                                         float(r["t_start"]), float(r["wall"]),
                                         f"rank {int(r['rank'])}")
            self.add(self.policy.tell_result(outcome))

    def on_report(self, task_id: int, step: int, value: float) -> bool:
        return self.policy.report(task_id, step, value)

    def tick(self) -> None:
        if self.pending and self.clock.due():
            self.write()

    # -- rows ---------------------------------------------------------------------------------
    def add(self, records: list[SegmentRecord]) -> None:
        self.pending += records
        for rec in records:
            self.n_ok += rec.ok
            self.n_failed += not rec.ok
            if not rec.ok and not self.first_error:
                self.first_error = (rec.outcome.error or "").strip().split("\n")[0] or \
                    "(no message)"
        if self.progress is not None:
            for rec in records:
                score = rec.outcome.score
                self.progress.update(1, self.sign * score if rec.ok and score is not None
                                     and math.isfinite(score) else None)
        self.tick()

    def write(self) -> None:
        if self.pending:
            rows = lineage_rows(self.pending, self.policy.space,
                                {r.spec.task_id: self.ranks.pop(r.spec.task_id, -1)
                                 for r in self.pending})
            self.write_rows(rows)          # flushed: now superseded checkpoints may go
            self.pending.clear()
        self.policy.release_checkpoints()
        self.clock.wrote()


def table_attrs(policy: PbtPolicy) -> dict:
    s = policy.settings
    return {"direction": policy.direction, "scheduler": "pbt", "sampler": "pbt",
            "pruner": "none", "population": s.population,
            "perturbation_interval": s.perturbation_interval, "max_steps": s.max_steps,
            "quantile_fraction": s.quantile_fraction,
            "resample_probability": s.resample_probability,
            "perturbation_factors": list(s.perturbation_factors),
            "checkpoint_dir": str(policy.root)}


def _finished(policy: PbtPolicy) -> bool:
    """Every member reached max_steps or stopped after failing (not cut by a time budget)."""
    return all(m.state in ("done", "stopped") for m in policy.members)


def run_pbt(session: Session) -> RunOutcome:
    """The PBT campaign on every rank (the kind's run): rank 0 drives the population."""
    world, plan, store = session.world, session.plan, session.store
    cfg: HpoCampaign = plan.config
    settings = cfg.hpo.hpo.pbt
    source, position = None, [0]
    if world.is_root:
        if plan.resume:
            rows = store.read_rows(TABLE)
            rows = rows[rows["status"] != schema.PENDING]
            position[0] = len(rows)
            policy = PbtPolicy.from_config(cfg.hpo, seed=plan.seed,
                                           output_path=plan.paths.output, rows=rows)
        else:
            policy = PbtPolicy.from_config(cfg.hpo, seed=plan.seed,
                                           output_path=plan.paths.output)
            policy.remove_stray_checkpoints()     # an overwritten (--force) campaign's
            capacity = settings.population * settings.segments_per_member
            session.create(tables={TABLE: TableSpec(
                lineage_dtype(cfg.hpo.space), capacity, table_attrs(policy),
                growable=True)})
        policy.root.mkdir(parents=True, exist_ok=True)
        total = settings.population * settings.segments_per_member
        progress = session.start_progress(max(total, position[0]), done=position[0],
                                          label="pbt", unit="segment")

        def write_rows(rows: np.ndarray) -> None:
            store.write_rows(TABLE, rows,
                             positions=np.arange(position[0], position[0] + len(rows)))
            position[0] += len(rows)
            store.flush()

        source = PbtSource(policy, write_rows, progress)
    stats = run_trials(session, source, lambda worker: PbtEvaluator(cfg.hpo, worker))
    if not world.is_root:
        return RunOutcome("interrupted" if stats.interrupted else "complete", {})
    best = source.policy.best()
    status = ("interrupted" if stats.interrupted or not _finished(source.policy)
              else "complete")
    store.trim(TABLE, position[0])  # segments are not known ahead: no pending tail
    summary = {"best": best, "n_rows": position[0], "study": "pbt",
               "storage": f"checkpoints:{source.policy.root}"}
    return RunOutcome(status, summary, best=None if best is None else
                      {"params": best[0], "objective": best[1]}, n_ok=source.n_ok,
                      n_failed=source.n_failed, first_error=source.first_error)
