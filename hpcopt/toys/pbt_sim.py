"""Run a PBT policy in one process, without MPI: a simulated farm with a virtual clock.

:func:`simulate` plays the coordinator loop of the MPI farm: `n_workers` workers take
segments as soon as they are free, the objective runs at once, and its result is delivered
at ``now + cost(spec)`` of a virtual clock, in completion order. Asynchronous schedules
(slow members, uneven workers) are thus exact and instantaneous; tests and the figure
script use it. Real concurrency is the farm's business.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Callable

from ..hpo.pbt.policy import PbtPolicy
from ..hpo.pbt.lineage import SegmentRecord, SegmentSpec


@dataclass
class SimResult:
    records: list[SegmentRecord] = field(default_factory=list)
    makespan: float = 0.0            # virtual time when the last segment finished
    busy: float = 0.0                # summed virtual time workers spent on segments
    n_workers: int = 1

    @property
    def utilization(self) -> float:
        """Fraction of worker time spent on segments."""
        return self.busy / (self.n_workers * self.makespan) if self.makespan > 0 else 0.0


def simulate(policy: PbtPolicy, runner: Callable[[dict], dict], *, n_workers: int = 1,
             cost: Callable[[SegmentSpec], float] | None = None,
             max_segments: int | None = None) -> SimResult:
    """Drive `policy` to the end (or `max_segments` results) with `n_workers` virtual workers.

    `runner(payload) -> outcome dict` is e.g. ``lambda p: run_segment(f, p)``; `cost`
    gives the virtual duration of a segment (default: its number of steps).
    """
    cost = cost or (lambda s: float(s.end_step - s.start_step))
    result = SimResult(n_workers=n_workers)
    now, free = 0.0, n_workers
    events: list[tuple[float, int, dict]] = []
    while True:
        while free and (max_segments is None or len(result.records) + len(events) < max_segments):
            spec = policy.ask()
            if spec is None:
                break
            duration = float(cost(spec))
            heapq.heappush(events, (now + duration, spec.task_id, runner(spec.to_dict())))
            result.busy += duration
            free -= 1
        if not events:
            break
        now, _, outcome = heapq.heappop(events)
        free += 1
        result.records += policy.tell_result(outcome)
    result.makespan = now
    return result
