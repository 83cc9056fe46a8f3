"""What one PBT segment is on the wire and in the result file.

:class:`SegmentSpec` goes to a worker (the farm task's payload), :class:`SegmentOutcome`
comes back, and a :class:`SegmentRecord` (both together) becomes one row of the lineage
table (:func:`lineage_dtype`, :func:`lineage_rows`): the result file's "trials" table of a
PBT campaign. ``to_dict``/``from_dict`` give JSON-clean dicts.

The lineage table is the HPO trials table (task_id, status, then the rows.py columns with
'value' as 'objective', so the report, exports and plots of HPO files read it unchanged)
followed by :data:`PBT_FIELDS`; a segment is a trial whose number is its task_id.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import numpy as np

from ...store import dtypes, schema
from ...store.dtypes import PBT_FIELDS
from ..rows import trial_row, trial_row_fields
from ..space import SearchSpace
from ..trials import TrialRecord

SEGMENT_STATES = ("complete", "failed")


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
    attempt: int = 0              # 0, then 1.. when a failed segment is run again
    retry_of: int = -1            # task_id of the first attempt (-1 for a first attempt)

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
    intermediate: list = field(default_factory=list)   # reported [step, value] pairs

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
    retried: bool = False         # failed and queued to run again

    @property
    def ok(self) -> bool:
        return self.outcome.state == "complete"


# -- the lineage table ----------------------------------------------------------------------

#: (name, dtype, meaning) of the columns after the HPO trial columns
def lineage_dtype(space: SearchSpace) -> np.dtype:
    """task_id, status, the HPO trial columns of rows.py ('value' named 'objective'; the
    segment's score), then :data:`PBT_FIELDS` (store.dtypes)."""
    return dtypes.lineage_dtype(trial_row_fields(space))


def trial_record(rec: SegmentRecord) -> TrialRecord:
    """The segment as an HPO trial record (trial number = task_id)."""
    s, o = rec.spec, rec.outcome
    return TrialRecord(s.task_id, o.state, o.score if rec.ok else None, s.params,
                       attempt=s.attempt, retry_of=None if s.retry_of < 0 else s.retry_of,
                       retried=rec.retried, error=o.error, started=o.started,
                       duration=o.duration, worker=o.worker,
                       intermediate=tuple((int(a), float(b)) for a, b in o.intermediate),
                       info=o.info)


def lineage_rows(records: Iterable[SegmentRecord], space: SearchSpace,
                 ranks: dict[int, int] | None = None) -> np.ndarray:
    """Lineage rows for `records` (`ranks`: task_id -> rank, which only the farm knows)."""
    records = list(records)
    dtype = lineage_dtype(space)
    rows = schema.empty_rows(dtype, [r.spec.task_id for r in records])
    for i, rec in enumerate(records):
        values = trial_row(trial_record(rec), space, (ranks or {}).get(rec.spec.task_id, -1))
        values["objective"] = values.pop("value")
        values["status"] = schema.OK if rec.ok else schema.FAILED
        for name, _, _ in PBT_FIELDS[:-2]:
            values[name] = getattr(rec.spec, name)
        values["perturbation_json"] = json.dumps(rec.spec.perturbation)
        values["checkpoint"] = rec.checkpoint
        row = rows[i]
        for name in dtype.names:
            row[name] = values[name]
    return rows
