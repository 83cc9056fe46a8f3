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
  training is the donor; m restores d's latest checkpoint (m's step becomes d's: ahead,
  or back when d is behind, so the population may run a few more than
  population * max_steps steps) with d's hyperparameters explored (pbt_explore.py:
  perturbed by a factor or resampled);
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ... import seeding
from ...errors import DataError
from ...store import schema
from .config import PbtSettings
from .explore import explore, sample_params
from .lineage import (PBT_FIELDS, SegmentOutcome, SegmentRecord, SegmentSpec,
                          lineage_dtype, lineage_rows)
from ..space import SearchSpace

__all__ = ["PbtPolicy", "pbt_stream", "PBT_DOMAIN", "SegmentSpec", "SegmentOutcome",
           "SegmentRecord", "PBT_FIELDS", "lineage_dtype", "lineage_rows"]

#: seeding domain of PBT streams (seeding.py numbers the other domains 0..4)
PBT_DOMAIN = seeding.PBT
_INIT, _DECIDE, _OBJECTIVE = 0, 1, 2


def pbt_stream(seed: int, purpose: int, member: int, segment: int = 0) -> np.random.SeedSequence:
    """The random stream of one (member, segment) decision, independent of ranks and timing."""
    return np.random.SeedSequence(int(seed), spawn_key=(PBT_DOMAIN, purpose, member, segment))


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
    first_task: int = -1                  # task_id of the first attempt of the next segment
    state: str = "ready"                  # ready | running | done | stopped


class PbtPolicy:
    """Coordinator-side PBT: ``ask() -> SegmentSpec | None``, ``tell_result(outcome) ->
    [SegmentRecord]``, ``report(...) -> False``, ``done``, ``best()``, ``close()``."""

    #: a member's next segment depends on the population's results: never sent ahead
    queues_ahead = False

    def __init__(self, settings: PbtSettings, space: SearchSpace, *, root: str | Path,
                 seed: int = 0, direction: str = "minimize", max_retries: int = 0,
                 timeout: float | None = None, max_concurrent: int | None = None,
                 time_budget: float | None = None, cleanup: bool = True):
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
        self.settings, self.space, self.root = settings, space, Path(root)
        self.seed, self.direction, self.max_retries = int(seed), direction, max_retries
        self.timeout, self.max_concurrent, self.cleanup = timeout, max_concurrent, cleanup
        self.defer_deletes = False     # see release_checkpoints()
        self._doomed: list[Path] = []
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
                    rows: np.ndarray | None = None, cleanup: bool = True) -> "PbtPolicy":
        """The policy of an :class:`HpoConfig` with ``scheduler = "pbt"``: a new one, or with
        `rows` (the lineage table read back) the resumed one (:meth:`from_rows`)."""
        hpo = config.hpo
        if hpo.pbt is None:
            raise ValueError("the config's [hpo] scheduler is not 'pbt'")
        kwargs = dict(root=hpo.pbt.checkpoint_root(output_path), seed=seed,
                      direction=hpo.direction, max_retries=hpo.max_retries,
                      timeout=hpo.trial_timeout, max_concurrent=hpo.max_concurrent,
                      time_budget=hpo.time_budget, cleanup=cleanup)
        if rows is not None:
            return cls.from_rows(rows, hpo.pbt, config.space, **kwargs)
        return cls(hpo.pbt, config.space, **kwargs)

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
        if m.failures == 0:
            m.first_task = self.next_task_id
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
            perturbation=dict(m.perturbation), timeout=self.timeout,
            attempt=m.failures, retry_of=m.first_task if m.failures else -1)
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
        if ok:
            record = SegmentRecord(spec, outcome, self._relative(m.id, spec.segment))
            self._completed(m, spec, float(outcome.score))
        else:
            self._delete(Path(spec.checkpoint_dir))
            m.failures += 1
            retry = m.failures <= self.max_retries
            record = SegmentRecord(spec, outcome, "", retried=retry)
            if retry:   # re-run as it was: params, restore point and step are unchanged
                m.state = "ready"
                self.ready.append(m.id)
            else:
                m.state = "stopped"
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
            self.existing.discard(key)
            if self.defer_deletes:
                self._doomed.append(self.checkpoint_path(*key))
            else:
                self._delete(self.checkpoint_path(*key))

    def release_checkpoints(self) -> None:
        """Delete checkpoints no longer referenced.  A campaign defers this until the rows
        that supersede them are flushed to the result file: a kill in between must still
        find the checkpoint of every member's last recorded segment."""
        while self._doomed:
            self._delete(self._doomed.pop())

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
        policy.remove_stray_checkpoints()
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

    def remove_stray_checkpoints(self) -> None:
        """Delete every ``member_<m>/seg_<k>`` folder under the root that no member needs:
        partial ones of lost segments (resume), or an earlier campaign's (fresh start)."""
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
