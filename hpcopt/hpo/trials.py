"""The values that cross the coordinator/worker boundary, as plain data.

:class:`TrialSpec` goes to a worker, :class:`TrialOutcome` comes back, and the policy
turns outcomes into :class:`TrialRecord` rows for the result file. All three convert to
and from JSON-clean dicts (``to_dict``/``from_dict``) for messages.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from ..seeding import TRIAL, seed_word

# report(step, value) -> True when the trial should stop (given to objectives).
ReportFn = Callable[[int, float], bool]

STATES = ("complete", "pruned", "failed")


def trial_seed(seed: int, number: int) -> int:
    """A 32-bit seed for trial `number`, independent of ranks and timing."""
    return seed_word(int(seed), TRIAL, int(number))


@dataclass(frozen=True)
class TrialSpec:
    """A trial to evaluate: `params` holds real values (lists for list choices)."""

    number: int
    params: dict[str, Any]
    attempt: int = 0                 # 0 for the first run, 1.. for retries
    retry_of: int | None = None      # number of the first attempt
    seed: int = 0                    # per-trial seed (see trial_seed)
    timeout: float | None = None     # wall-time limit in seconds
    propose_seed: int | None = None  # set: draw the next trial on the worker (propose.py)
    start_by: float | None = None    # unix time: not started after it (the time budget's
                                     # end, for a trial queued on its worker)

    def to_dict(self) -> dict:
        # shallow (asdict copies recursively, a tenth of rank 0's time per trial): the dict
        # is a message, serialized at once
        return dict(vars(self))

    @classmethod
    def from_dict(cls, d: dict) -> "TrialSpec":
        return cls(**d)


@dataclass(frozen=True)
class TrialOutcome:
    """What a worker sends back after running a trial."""

    number: int
    state: str                       # "complete" | "pruned" | "failed"
    value: float | None = None       # final value (complete) or last reported (pruned)
    error: str | None = None         # failed: "ExcType: message" or the command's error
    started: float = 0.0             # unix time
    duration: float = 0.0            # seconds
    worker: str = ""                 # filled by the campaign, e.g. "rank 3 on node12"
    info: dict = field(default_factory=dict)   # extra JSON the objective returned
    proposal: dict | None = None     # the worker's draw for a next trial (Optuna params)
    interrupted: bool = False        # stopped by a stop signal: re-run, not a result

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {self.state!r}")

    def to_dict(self) -> dict:
        return dict(vars(self))          # shallow, as TrialSpec's: a message

    @classmethod
    def from_dict(cls, d: dict) -> "TrialOutcome":
        return cls(**d)


@dataclass(frozen=True)
class TrialRecord:
    """A finished trial as stored (one result-table row; see rows.py)."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    attempt: int = 0
    retry_of: int | None = None
    retried: bool = False            # failed and queued again (max_retries)
    error: str | None = None
    started: float = math.nan        # unix time
    duration: float = math.nan
    worker: str = ""
    intermediate: tuple[tuple[int, float], ...] = ()
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["intermediate"] = [list(x) for x in self.intermediate]
        return d


class Reporter:
    """The `report` an objective receives: validates, remembers, forwards to the coordinator."""

    def __init__(self, decide: ReportFn | None):
        self._decide = decide
        self.stop_requested = False
        self.last: tuple[int, float] | None = None
        self.n_reports = 0

    def __call__(self, step: int, value: float) -> bool:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"report(step, value): step must be an integer >= 0, got {step!r}")
        value = float(value)
        if self.stop_requested:
            return True
        self.last, self.n_reports = (int(step), value), self.n_reports + 1
        if self._decide is not None and math.isfinite(value):
            self.stop_requested = bool(self._decide(int(step), value))
        return self.stop_requested
