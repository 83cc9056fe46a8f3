"""Population-based training (PBT): the coordinator's policy. No MPI here.

A population of ``population`` members is trained in *segments* of
``perturbation_interval`` steps; a segment is one farm task (:class:`SegmentSpec` out,
:class:`SegmentOutcome` back, one :class:`SegmentRecord` = one lineage row stored).
Members are independent: whenever a segment finishes, that member alone is decided on
and queued again, so a slow member never holds the others back (no population barrier).

Decision after member m finishes a segment at step e with score s (:meth:`PbtPolicy.tell_result`):

* ranking: every member by its most recent score at a step <= e (members ahead of m are
  compared at m's step, members behind at their latest: m is never judged against members
  with more training); with n members ranked, the top and bottom
  k = min(ceil(n * quantile_fraction), n // 2);
* exploit + explore, when m is in the bottom k: a random top-k member d that is still
  training is the donor; m restores d's latest checkpoint (its step jumps to d's, never
  back) with d's hyperparameters explored (pbt_explore.py: perturbed by a factor or
  resampled);
* otherwise m continues from its own checkpoint with the same hyperparameters.

Randomness: one stream per (seed, member) for the initial values and one per
(seed, member, segment) for each decision, so the run is reproducible given the seed and
the order in which results arrive. Failed segments are re-run as they were (``max_retries``
times, then the member stops). Checkpoints live in ``<root>/member_<m>/seg_<k>/``; a
checkpoint is deleted once no member's latest state and no queued or running segment
refers to it. :meth:`PbtPolicy.from_rows` rebuilds the policy from the lineage rows and
the checkpoints on disk: every member continues from its last completed segment.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import h5py
import numpy as np

from ..errors import DataError
from ..store import schema
from .pbt_config import PbtSettings
from .pbt_explore import explore, sample_params
from .space import SearchSpace

#: seeding domain of PBT streams (seeding.py numbers the other domains 0..4)
PBT_DOMAIN = 5
_INIT, _DECIDE, _OBJECTIVE = 0, 1, 2
SEGMENT_STATES = ("complete", "failed")
PARAM_COLUMN_PREFIX = "p_"


def pbt_stream(seed: int, purpose: int, member: int, segment: int = 0) -> np.random.SeedSequence:
    """The random stream of one (member, segment) decision, independent of ranks and timing."""
    return np.random.SeedSequence(int(seed), spawn_key=(PBT_DOMAIN, purpose, member, segment))


# -- what crosses the coordinator/worker boundary ---------------------------------------------

@dataclass(frozen=True)
class SegmentSpec:
    """One segment to run: the task payload (``to_dict`` is JSON-clean)."""

    task_id: int                  # unique segment number (the lineage table's task_id)
    member: int
    segment: int                  # the member's own segment counter (0, 1, ...)
    params: dict[str, Any]
    start_step: int               # steps already in the restored state (0: fresh start)
    end_step: int                 # run steps start_step + 1 .. end_step
    checkpoint_dir: str           # save the state here (created empty by the runner)
    restore_from: str | None      # resume from this checkpoint (read only); None: fresh start
    seed: int = 0                 # for the objective's own randomness
    parent_member: int = -1       # exploit: the member whose checkpoint is restored, else -1
    parent_segment: int = -1      # segment of the restored checkpoint (-1: fresh start)
    parent_task: int = -1         # task_id of the restored checkpoint (-1: fresh start)
    perturbation: dict[str, str] = field(default_factory=dict)   # explore: what changed
    timeout: float | None = None  # wall seconds for the segment

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SegmentSpec":
        return cls(**d)


@dataclass(frozen=True)
class SegmentOutcome:
    """What the worker sends back (``to_dict`` is JSON-clean)."""

    task_id: int
    state: str                    # "complete" | "failed"
    score: float | None = None    # the returned value, else the last reported one
    last_step: int = -1           # last reported step (-1: none)
    error: str | None = None
    started: float = math.nan     # unix time
    duration: float = math.nan    # seconds
    worker: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.state not in SEGMENT_STATES:
            raise ValueError(f"state must be one of {SEGMENT_STATES}, got {self.state!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SegmentOutcome":
        return cls(**d)


@dataclass(frozen=True)
class SegmentRecord:
    """A finished segment as stored: one lineage row (see :func:`lineage_dtype`)."""

    spec: SegmentSpec
    outcome: SegmentOutcome
    checkpoint: str = ""          # checkpoint path relative to the checkpoint root ("" failed)

    @property
    def ok(self) -> bool:
        return self.outcome.state == "complete"


# -- the lineage table ----------------------------------------------------------------------

_STR = h5py.string_dtype()
#: (name, dtype, meaning); task_id first (DESIGN.md), then what report/summary.py reads
LINEAGE_FIELDS: tuple[tuple[str, Any, str], ...] = (
    ("task_id", "<i8", "unique segment number"),
    ("status", schema.status_dtype, "ok | failed"),
    ("objective", "<f8", "score of the segment (returned or last reported value); NaN failed"),
    ("params_json", _STR, "hyperparameters of the segment as a JSON object"),
    ("member", "<i4", "population member"),
    ("segment", "<i4", "the member's segment counter"),
    ("start_step", "<i8", "steps in the restored state"),
    ("end_step", "<i8", "steps after the segment"),
    ("parent_member", "<i4", "exploit: member whose checkpoint was restored; -1 otherwise"),
    ("parent_segment", "<i4", "segment of the restored checkpoint; -1 for a fresh start"),
    ("parent_task", "<i8", "task_id of the restored checkpoint; -1 for a fresh start"),
    ("perturbation_json", _STR, "explore: what happened to each hyperparameter (JSON)"),
    ("checkpoint", _STR, "checkpoint written, relative to the checkpoint root"),
    ("rank", "<i4", "MPI rank that ran the segment (-1 unknown)"),
    ("worker", _STR, "rank and host"),
    ("t_start", "<f8", "unix time the segment started"),
    ("wall", "<f8", "wall seconds of the segment"),
    ("message", f"S{schema.MESSAGE_LEN}", "error of a failed segment"),
    ("info_json", _STR, "extra JSON the objective returned"),
)


def lineage_dtype(space: SearchSpace) -> np.dtype:
    """The lineage table: :data:`LINEAGE_FIELDS`, then ``p_<name>`` (float, NaN when
    inactive) for every numeric hyperparameter."""
    fields = [(name, dt) for name, dt, _ in LINEAGE_FIELDS]
    fields += [(PARAM_COLUMN_PREFIX + p.name, "<f8") for p in space.params if p.is_numeric]
    return np.dtype(fields)


def lineage_rows(records: Iterable[SegmentRecord], space: SearchSpace,
                 ranks: dict[int, int] | None = None) -> np.ndarray:
    """Lineage rows for `records` (`ranks`: task_id -> rank, which only the farm knows)."""
    records = list(records)
    dtype = lineage_dtype(space)
    rows = schema.empty_rows(dtype, [r.spec.task_id for r in records])
    for i, rec in enumerate(records):
        s, o = rec.spec, rec.outcome
        row = rows[i]
        row["status"] = schema.OK if rec.ok else schema.FAILED
        row["objective"] = o.score if rec.ok and o.score is not None else math.nan
        row["params_json"] = json.dumps(s.params)
        for name in ("member", "segment", "start_step", "end_step", "parent_member",
                     "parent_segment", "parent_task"):
            row[name] = getattr(s, name)
        row["perturbation_json"] = json.dumps(s.perturbation)
        row["checkpoint"] = rec.checkpoint
        row["rank"] = (ranks or {}).get(s.task_id, -1)
        row["worker"] = o.worker
        row["t_start"] = o.started
        row["wall"] = o.duration
        row["message"] = schema.encode_message(o.error or "")
        row["info_json"] = json.dumps(o.info, default=str) if o.info else ""
        for p in space.params:
            if p.is_numeric and p.name in s.params:
                row[PARAM_COLUMN_PREFIX + p.name] = float(s.params[p.name])
    return rows


# -- the policy ------------------------------------------------------------------------------

class _Ckpt(NamedTuple):
    member: int
    segment: int
    task_id: int
    step: int


@dataclass
class _Member:
    id: int
    params: dict                          # of the next (or running) segment
    step: int = 0                         # start step of the next segment
    restore: _Ckpt | None = None          # checkpoint the next segment starts from
    parent_member: int = -1
    perturbation: dict = field(default_factory=dict)
    next_segment: int = 0
    latest: _Ckpt | None = None           # last completed segment: the member's own state
    latest_params: dict | None = None
    scores: dict[int, float] = field(default_factory=dict)   # end step -> score
    failures: int = 0                     # consecutive failed segments
    state: str = "ready"                  # ready | running | done | stopped


class PbtPolicy:
    """Coordinator-side PBT: ``ask() -> SegmentSpec | None``, ``tell_result(outcome) ->
    [SegmentRecord]``, ``report(...) -> False``, ``done``, ``best()``, ``close()``."""

    def __init__(self, settings: PbtSettings, space: SearchSpace, *, root: str | Path,
                 seed: int = 0, direction: str = "minimize", max_retries: int = 0,
                 timeout: float | None = None, max_concurrent: int | None = None,
                 time_budget: float | None = None, cleanup: bool = True):
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
        self.settings, self.space, self.root = settings, space, Path(root)
        self.seed, self.direction, self.max_retries = int(seed), direction, max_retries
        self.timeout, self.max_concurrent, self.cleanup = timeout, max_concurrent, cleanup
        self.deadline = None if time_budget is None else time.monotonic() + time_budget
        self.members = [_Member(m, sample_params(space, np.random.default_rng(
            pbt_stream(self.seed, _INIT, m)))) for m in range(settings.population)]
        self.ready: deque[int] = deque(range(settings.population))
        self.running: dict[int, SegmentSpec] = {}
        self.existing: set[tuple[int, int]] = set()   # (member, segment) checkpoints on disk
        self.next_task_id = 0
        self.closed = False
        self._best: tuple[float, int, dict, float] | None = None   # (loss, task, params, score)

    @classmethod
    def from_config(cls, config, *, seed: int, output_path: str | Path,
                    cleanup: bool = True) -> "PbtPolicy":
        """The policy of an :class:`HpoConfig` with ``scheduler = "pbt"``."""
        hpo = config.hpo
        if hpo.pbt is None:
            raise ValueError("the config's [hpo] scheduler is not 'pbt'")
        return cls(hpo.pbt, config.space, root=hpo.pbt.checkpoint_root(output_path), seed=seed,
                   direction=hpo.direction, max_retries=hpo.max_retries,
                   timeout=hpo.trial_timeout, max_concurrent=hpo.max_concurrent,
                   time_budget=hpo.time_budget, cleanup=cleanup)

    # -- paths ----------------------------------------------------------------------------
    def checkpoint_path(self, member: int, segment: int) -> Path:
        return self.root / f"member_{member}" / f"seg_{segment}"

    def _relative(self, member: int, segment: int) -> str:
        return f"member_{member}/seg_{segment}"

    # -- ask/tell ---------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once nothing is running and nothing more will be asked."""
        return not self.running and (not self.ready or self._stopped_asking())

    def _stopped_asking(self) -> bool:
        return self.closed or (self.deadline is not None and time.monotonic() >= self.deadline)

    def ask(self) -> SegmentSpec | None:
        """The next segment of a ready member (first come, first served), or None."""
        if not self.ready or self._stopped_asking():
            return None
        if self.max_concurrent is not None and len(self.running) >= self.max_concurrent:
            return None
        m = self.members[self.ready.popleft()]
        k = m.next_segment
        m.next_segment += 1
        m.state = "running"
        r = m.restore
        spec = SegmentSpec(
            task_id=self.next_task_id, member=m.id, segment=k, params=m.params,
            start_step=m.step,
            end_step=min(m.step + self.settings.perturbation_interval, self.settings.max_steps),
            checkpoint_dir=str(self.checkpoint_path(m.id, k)),
            restore_from=None if r is None else str(self.checkpoint_path(r.member, r.segment)),
            seed=int(pbt_stream(self.seed, _OBJECTIVE, m.id, k).generate_state(1)[0]),
            parent_member=m.parent_member,
            parent_segment=-1 if r is None else r.segment,
            parent_task=-1 if r is None else r.task_id,
            perturbation=dict(m.perturbation), timeout=self.timeout)
        self.next_task_id += 1
        self.running[spec.task_id] = spec
        return spec

    def report(self, task_id: int, step: int, value: float) -> bool:
        """Intermediate values need no decision in PBT: never stop a segment."""
        return False

    def tell_result(self, outcome: SegmentOutcome | dict) -> list[SegmentRecord]:
        """Record a finished segment, decide the member's next one; returns its record."""
        if isinstance(outcome, dict):
            outcome = SegmentOutcome.from_dict(outcome)
        spec = self.running.pop(outcome.task_id, None)
        if spec is None:
            raise ValueError(f"segment {outcome.task_id} is not running")
        m = self.members[spec.member]
        ok = outcome.state == "complete" and outcome.score is not None and math.isfinite(outcome.score)
        if outcome.state == "complete" and not ok:
            outcome = SegmentOutcome(outcome.task_id, "failed", None, outcome.last_step,
                                     "segment finished without a finite score", outcome.started,
                                     outcome.duration, outcome.worker, outcome.info)
        record = SegmentRecord(spec, outcome, self._relative(m.id, spec.segment) if ok else "")
        if ok:
            self._completed(m, spec, float(outcome.score))
        else:
            self._delete(Path(spec.checkpoint_dir))
            m.failures += 1
            if m.failures > self.max_retries:
                m.state = "stopped"
            else:   # re-run as it was: params, restore point and step are unchanged
                m.state = "ready"
                self.ready.append(m.id)
        self._clean()
        return [record]

    def _completed(self, m: _Member, spec: SegmentSpec, score: float) -> None:
        ck = _Ckpt(m.id, spec.segment, spec.task_id, spec.end_step)
        m.latest, m.latest_params, m.failures = ck, spec.params, 0
        m.scores[spec.end_step] = score
        self.existing.add((m.id, spec.segment))
        self._track_best(spec.task_id, spec.params, score)
        if spec.end_step >= self.settings.max_steps:
            m.state = "done"
            return
        self._decide(m, spec)
        m.state = "ready"
        self.ready.append(m.id)

    def _decide(self, m: _Member, spec: SegmentSpec) -> None:
        """Exploit/explore or continue (module docstring)."""
        rng = np.random.default_rng(pbt_stream(self.seed, _DECIDE, m.id, spec.segment))
        bottom, top = self.quantiles(spec.end_step)
        # a finished member is no donor: m would end at once with a copy of it
        donors = [j for j in top if j != m.id
                  and self.members[j].latest.step < self.settings.max_steps]
        if m.id in bottom and donors:
            d = self.members[donors[int(rng.integers(len(donors)))]]
            m.params, m.perturbation = explore(
                self.space, d.latest_params, rng, factors=self.settings.perturbation_factors,
                resample_probability=self.settings.resample_probability)
            m.restore, m.step, m.parent_member = d.latest, d.latest.step, d.id
        else:
            m.params, m.perturbation = spec.params, {}
            m.restore, m.step, m.parent_member = m.latest, spec.end_step, -1

    def quantiles(self, step: int) -> tuple[list[int], list[int]]:
        """(bottom, top) members at `step`, worst first / best first: each member ranked by
        its most recent score at a step <= `step` (members scored only later are left out)."""
        cohort = []
        for j in self.members:
            reached = [s for s in j.scores if s <= step]
            if reached:
                cohort.append((self._loss(j.scores[max(reached)]), j.id))
        cohort.sort()
        n = len(cohort)
        k = min(math.ceil(n * self.settings.quantile_fraction), n // 2)
        if k == 0:
            return [], []
        return [j for _, j in reversed(cohort[n - k:])], [j for _, j in cohort[:k]]

    def _loss(self, score: float) -> float:
        return -score if self.direction == "maximize" else score

    def _track_best(self, task_id: int, params: dict, score: float) -> None:
        key = (self._loss(score), task_id)
        if self._best is None or key < self._best[:2]:
            self._best = (key[0], task_id, params, score)

    # -- checkpoints ------------------------------------------------------------------------
    def referenced(self) -> set[tuple[int, int]]:
        """Checkpoints still needed: every member's latest, and queued/running restores."""
        keep = {(m.latest.member, m.latest.segment) for m in self.members if m.latest}
        keep |= {(m.restore.member, m.restore.segment) for m in self.members
                 if m.restore and m.state in ("ready", "running")}
        return keep

    def _clean(self) -> None:
        for key in sorted(self.existing - self.referenced()):
            self._delete(self.checkpoint_path(*key))
            self.existing.discard(key)

    def _delete(self, path: Path) -> None:
        if self.cleanup:
            shutil.rmtree(path, ignore_errors=True)

    # -- campaign interface -------------------------------------------------------------------
    def drain_records(self) -> list[SegmentRecord]:
        return []

    def heartbeat(self) -> None:
        pass

    def close(self, reason: str = "done") -> list[SegmentRecord]:
        """Stop asking. Running segments are lost (a resume runs them again)."""
        self.closed = True
        return []

    def best(self) -> tuple[dict, float] | None:
        """(params, score) of the best completed segment so far."""
        return None if self._best is None else (self._best[2], self._best[3])

    def latest_scores(self) -> dict[int, float]:
        """member -> score of its last completed segment."""
        return {m.id: m.scores[m.latest.step] for m in self.members if m.latest}

    # -- resume ---------------------------------------------------------------------------------
    @classmethod
    def from_rows(cls, rows: np.ndarray, settings: PbtSettings, space: SearchSpace, *,
                  root: str | Path, **kwargs) -> "PbtPolicy":
        """Rebuild from lineage rows (pending rows are ignored) and the checkpoints under
        `root`: each member continues from its last completed segment with its
        hyperparameters; partial checkpoints of lost segments are deleted."""
        policy = cls(settings, space, root=root, **kwargs)
        rows = rows[rows["status"] != schema.PENDING]
        rows = rows[np.argsort(rows["task_id"], kind="stable")]
        for row in rows:
            policy._replay(row)
        policy.ready = deque()
        for m in policy.members:
            if m.failures > policy.max_retries:
                m.state = "stopped"
            elif m.latest is not None and m.latest.step >= settings.max_steps:
                m.state = "done"
            else:
                m.state = "ready"
                policy.ready.append(m.id)
                if m.latest is not None:
                    m.params, m.perturbation, m.parent_member = m.latest_params, {}, -1
                    m.restore, m.step = m.latest, m.latest.step
                    path = policy.checkpoint_path(m.latest.member, m.latest.segment)
                    if not path.is_dir():
                        raise DataError(f"the checkpoint of member {m.id} (segment "
                                        f"{m.latest.segment}) is missing: cannot resume",
                                        path=str(path))
        policy.next_task_id = int(rows["task_id"].max()) + 1 if len(rows) else 0
        policy._clean_stray()
        return policy

    def _replay(self, row: np.void) -> None:
        m = self.members[int(row["member"])]
        seg, task_id = int(row["segment"]), int(row["task_id"])
        m.next_segment = max(m.next_segment, seg + 1)
        if row["status"] != schema.OK:
            m.failures += 1
            return
        params = json.loads(_text(row["params_json"]))
        step, score = int(row["end_step"]), float(row["objective"])
        m.latest, m.latest_params, m.failures = _Ckpt(m.id, seg, task_id, step), params, 0
        m.scores[step] = score
        self.existing.add((m.id, seg))
        self._track_best(task_id, params, score)

    def _clean_stray(self) -> None:
        """Delete checkpoints no member needs, including partial ones of lost segments."""
        keep = self.referenced()
        self.existing &= keep
        if not self.cleanup or not self.root.is_dir():
            return
        pattern = re.compile(r"^member_(\d+)/seg_(\d+)$")
        for path in sorted(self.root.glob("member_*/seg_*")):
            match = pattern.match(f"{path.parent.name}/{path.name}")
            if match and (int(match[1]), int(match[2])) not in keep:
                shutil.rmtree(path, ignore_errors=True)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
