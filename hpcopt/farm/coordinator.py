"""The coordinator of dynamic mode, and the node-local sub-coordinator built from it.

:class:`Coordinator` (rank 0) hands batches of tasks to its children (worker
ranks, or the sub-coordinators of other nodes), keeps each one ``window`` tasks
ahead so it never waits, collects their rows, retries failed tasks on another
child, answers REPORT with a DECISION, and ends the farm with STOP: when the
source is exhausted and nothing is in flight, or at once when a stop signal
arrived on any rank (a child forwards it with STOP_REQUEST).  Work starts only
when every child is READY (a fair first round: no rank gets everything because
it started first).

:class:`SubCoordinator` (the lowest rank of a node, see :mod:`.tree`) looks like
one big worker to its parent (its READY names its window: four times its workers'
windows) and like a coordinator to the workers of its node: it takes the tasks its
parent sends, hands them out, and sends its workers' rows up in batches, so the
global coordinator exchanges a message per batch of a node instead of one per
worker.  Retries stay with the global coordinator (it knows the whole campaign);
reports and stop requests are forwarded.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from typing import Any, Sequence

import numpy as np

from ..mpi import tags
from ..mpi.transport import Message, Transport
from ..store import schema
from .stopflag import StopFlag
from .tasks import (FarmOptions, FarmStats, Task, TaskBatch, TaskSource, concat_rows,
                    pack_rows, unpack_rows)

log = logging.getLogger("hpcopt")

#: seconds a coordinator waits for a message before it looks at its clock and flags again
WAIT = 0.25
#: with prefetch, a worker's window also holds this many seconds of its tasks (measured from
#: the rows' wall times), so that short tasks never wait for the coordinator's answer...
PREFETCH_SECONDS = 0.05
#: ...up to this many tasks (with PREFETCH_SECONDS: the imbalance left at the end of a
#: campaign stays below a tenth of a second)
MAX_PREFETCH = 4096
#: messages a coordinator handles before it answers (results first, then one TASKS each)
MAX_DRAIN = 64


class Coordinator:
    """Rank 0 of dynamic mode (module docstring)."""

    def __init__(self, transport: Transport, source: TaskSource, dtype: np.dtype,
                 options: FarmOptions, stop: StopFlag, children: Sequence[int], *,
                 members: dict[int, Sequence[int]] | None = None, retries: bool = True):
        self.transport, self.source, self.options, self.stop = transport, source, options, stop
        self.dtype = dtype
        self.children = list(children)
        # the ranks that evaluate what is sent to each child (a sub-coordinator's node)
        self.members = {c: frozenset(members[c] if members else (c,)) for c in self.children}
        self.windows: dict[int, int] = {}
        self.declared: set[int] = set()     # children that state their window (sub-coordinators)
        self.base_window = options.window
        self.sent: dict[int, dict[int, Any]] = {c: {} for c in self.children}  # id -> payload
        self.in_flight = 0
        self.retry: deque[Task] = deque()
        self.retries = retries and options.max_retries > 0
        self.dry: set[int] = set()          # ready children with nothing outstanding
        self.wanting: set[int] = set()      # children to top up after the messages in hand
        self.final_rows: list[np.ndarray] = []   # for the source, after the messages in hand
        self.adapted: dict[int, int] = {}   # RESULTS messages seen per child (adapt_window)
        self.live = set(self.children)      # children that have not sent their final rows
        self.started = False
        self.stopping = False
        self.stats = FarmStats()
        self.next_tasks = getattr(source, "next_tasks", None)
        self.tick = getattr(source, "tick", None)

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> FarmStats:
        while self.live:
            self.step()
            message = self.transport.recv(timeout=WAIT)
            handled = 0
            while message is not None:     # everything that has arrived, then answer once
                self.dispatch(message)
                handled += 1
                message = self.transport.poll() if handled < MAX_DRAIN else None
            self.deliver()
            self.refill()
            self.after_messages()
        self.finish()
        return self.stats

    def step(self) -> None:
        """Between messages: let the source flush; start stopping when it is time."""
        if self.tick is not None:
            self.tick()
        if not self.stopping and (self.stop.signal() is not None or self.finished()):
            self.stop_all()

    def finished(self) -> bool:
        return not self.retry and self.in_flight == 0 and self.source.exhausted()

    def stop_all(self) -> None:
        self.stopping = True
        self.stats.interrupted = self.stop.signal() is not None
        for c in sorted(self.live):
            self.transport.send(None, c, tags.STOP)

    def dispatch(self, message: Message) -> None:
        self.handle(message)

    def handle(self, message: Message) -> None:
        tag, src = message.tag, message.source
        if tag == tags.RESULTS:
            packed, final, *window = message.obj
            rows = unpack_rows(packed, self.dtype)
            if window and window[0]:
                self.windows[src] = int(window[0])
            elif self.options.prefetch and rows is not None \
                    and len(rows):
                self.adapt_window(src, rows)
            self.take_rows(src, rows)
            if final:
                self.live.discard(src)
                self.dry.discard(src)
            else:
                self.wanting.add(src)
        elif tag == tags.READY:
            if message.obj:
                self.declared.add(src)
            self.windows[src] = int(message.obj or self.base_window)
            if len(self.windows) == len(self.children) and not self.started:
                self.started = True
                self.all_ready()
                self.wanting.update(self.children)
        elif tag == tags.REPORT:
            self.on_report(src, message.obj)
        elif tag == tags.STOP_REQUEST:
            self.on_stop_request(int(message.obj))
        else:
            raise RuntimeError(f"rank {self.transport.rank}: unexpected message (tag {tag}) "
                               f"from rank {src}")

    def deliver(self) -> None:
        """Hand the final rows of the messages just handled to the source, at once."""
        if self.final_rows:
            rows = concat_rows(self.final_rows, self.dtype)
            self.final_rows = []
            self.stats.tasks_done += len(rows)
            self.source.on_results(rows)

    def refill(self) -> None:
        """Top up the children that ran dry (the source may have tasks now: HPO), then
        those that just sent rows (each gets one TASKS message for all its room)."""
        if self.started and not self.stopping:
            for c in [c for c in self.dry if c not in self.wanting]:
                self.top_up(c)
            for c in sorted(self.wanting):
                self.top_up(c)
        self.wanting.clear()

    def after_messages(self) -> None:
        pass

    def finish(self) -> None:
        pass

    # -- hooks a sub-coordinator overrides ----------------------------------------------------
    def all_ready(self) -> None:
        workers = sum(len(m) for m in self.members.values())
        log.debug(f"rank {self.transport.rank}: all {workers} workers ready (through "
                  f"{len(self.children)} children); windows {sorted(set(self.windows.values()))}")

    def on_report(self, src: int, report: tuple) -> None:
        task_id, step, value = report
        decision = bool(self.source.on_report(task_id, step, value))
        self.transport.send(decision, src, tags.DECISION)

    def on_stop_request(self, signum: int) -> None:
        self.stop.request(signum)

    def adapt_window(self, child: int, rows: np.ndarray) -> None:
        """Prefetch: at least two chunks, and PREFETCH_SECONDS of this child's tasks."""
        seen = self.adapted[child] = self.adapted.get(child, 0) + 1
        if child in self.declared or (seen > 8 and seen % 64):
            return                          # measured often at first, then now and then
        per_task = max(float(rows["wall"].mean()), 1e-6)
        want = min(self.options.prefetch_limit or MAX_PREFETCH,
                   math.ceil(PREFETCH_SECONDS / per_task))
        self.windows[child] = max(self.base_window, want)

    # -- tasks out, rows in -----------------------------------------------------------------
    def take_rows(self, src: int, rows: np.ndarray | None) -> None:
        if rows is None or len(rows) == 0:
            return
        sent = self.sent[src]
        ids = rows["task_id"].tolist()
        try:
            payloads = [sent.pop(t) for t in ids]
        except KeyError as exc:
            raise RuntimeError(f"rank {src} returned a row for task {exc.args[0]}, which it "
                               f"was not given") from None
        self.in_flight -= len(ids)
        if not sent and self.started:
            self.dry.add(src)
        if self.retries:
            again = (rows["status"] == schema.FAILED) & (rows["attempts"] <= self.options.max_retries)
            if again.any():
                for i in np.flatnonzero(again).tolist():
                    self.retry.append(Task(ids[i], int(rows["attempts"][i]), payloads[i],
                                           avoid_rank=int(rows["rank"][i])))
                self.stats.retries += int(again.sum())
                rows = rows[~again]
        if len(rows):
            self.final_rows.append(rows)

    def top_up(self, child: int) -> None:
        """Fill `child` up to its window (so it never waits for us), once a chunk or half
        the window is free: big windows are refilled in few, long runs of tasks."""
        if child not in self.live:
            return
        sent = self.sent[child]
        window = self.windows.get(child, 0)
        room = window - len(sent)
        if room > 0 and (not sent or room >= min(window, max(self.options.chunk_size,
                                                             window // 2))):
            batch = self.next_batch(child, room)
            if len(batch):
                if batch.payloads is None:
                    sent.update(dict.fromkeys(batch.ids.tolist()))
                else:
                    sent.update(zip(batch.ids.tolist(), batch.payloads))
                self.in_flight += len(batch)
                self.transport.send(batch, child, tags.TASKS)
        if sent:
            self.dry.discard(child)
        else:
            self.dry.add(child)

    def next_batch(self, child: int, room: int) -> TaskBatch:
        """Up to `room` tasks for `child`: retries that may run there first, then new ones."""
        parts = []
        if self.retry:
            picked, kept = [], deque()
            alone = len(self.children) == 1
            members = self.members[child]
            while self.retry and len(picked) < room:
                task = self.retry.popleft()
                (picked if alone or task.avoid_rank not in members else kept).append(task)
            self.retry.extendleft(reversed(kept))
            if picked:
                parts.append(TaskBatch.of(picked))
                room -= len(picked)
        if room > 0:
            if self.next_tasks is not None:
                fresh = self.next_tasks(room)
                parts.append(fresh if isinstance(fresh, TaskBatch) else TaskBatch.of(fresh))
            else:
                fresh = []
                while len(fresh) < room and (task := self.source.next_task()) is not None:
                    fresh.append(task)
                parts.append(TaskBatch.of(fresh))
        return TaskBatch.concat(parts)


class _Upstream:
    """A sub-coordinator's task source: the tasks its parent sent; rows wait to go up."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype
        self.queue: deque[TaskBatch] = deque()
        self.queued = 0
        self.closed = False                 # the parent sent STOP
        self.rows: list[np.ndarray] = []
        self.n_rows = 0

    def add(self, batch: TaskBatch) -> None:
        if len(batch):
            self.queue.append(batch)
            self.queued += len(batch)

    def next_tasks(self, n: int) -> TaskBatch:
        parts = []
        while n > 0 and self.queue:
            batch = self.queue.popleft()
            if len(batch) > n:
                batch, rest = batch.split(n)
                self.queue.appendleft(rest)
            parts.append(batch)
            n -= len(batch)
            self.queued -= len(batch)
        return TaskBatch.concat(parts)

    def next_task(self) -> Task | None:
        batch = self.next_tasks(1)
        return batch.task(0) if len(batch) else None

    def exhausted(self) -> bool:
        return self.closed

    def on_results(self, rows: np.ndarray) -> None:
        self.rows.append(rows)
        self.n_rows += len(rows)

    def take_rows(self) -> np.ndarray | None:
        if not self.rows:
            return None
        rows = concat_rows(self.rows, self.dtype)
        self.rows, self.n_rows = [], 0
        return rows

    def on_report(self, task_id: int, step: int, value: float) -> bool:  # pragma: no cover
        raise AssertionError("a sub-coordinator forwards reports")


class SubCoordinator(Coordinator):
    """The coordinator of one node's workers under a parent (module docstring)."""

    def __init__(self, transport: Transport, dtype: np.dtype, options: FarmOptions,
                 stop: StopFlag, parent: int, children: Sequence[int]):
        self.upstream = _Upstream(dtype)
        super().__init__(transport, self.upstream, dtype, options, stop, children, retries=False)
        self.parent = parent
        self.waiting_reports: deque[int] = deque()    # children waiting for a DECISION
        self.asked_stop = False
        self.last_up = time.monotonic()

    @property
    def workers_window(self) -> int:
        return sum(self.windows.values())

    def dispatch(self, message: Message) -> None:
        if message.source == self.parent:
            self.from_parent(message)
        else:
            self.handle(message)

    def after_messages(self) -> None:
        self.send_up(final=False)

    def finish(self) -> None:
        self.send_up(final=True)

    def step(self) -> None:
        signum = self.stop.signal()
        if signum is not None and not self.asked_stop:
            self.asked_stop = True
            self.transport.send(signum, self.parent, tags.STOP_REQUEST)
        if not self.stopping and self.upstream.closed:
            self.stop_all()

    def finished(self) -> bool:
        return False            # only the parent ends the farm

    def from_parent(self, message: Message) -> None:
        if message.tag == tags.TASKS:
            self.upstream.add(message.obj)
            self.wanting.update(self.children)
        elif message.tag == tags.STOP:
            self.upstream.closed = True
            self.stop_all()
        elif message.tag == tags.DECISION:
            self.transport.send(message.obj, self.waiting_reports.popleft(), tags.DECISION)
        else:
            raise RuntimeError(f"rank {self.transport.rank}: unexpected message (tag "
                               f"{message.tag}) from its parent {message.source}")

    @property
    def capacity(self) -> int:
        """The window this node asks its parent for: four times its workers' windows, so
        that, refilled when half of it is free, its queue still holds a window's worth."""
        return 4 * self.workers_window

    def send_up(self, final: bool) -> None:
        """Rows to the parent: half a workers' window of them at a time, every
        result_interval, at once when the node has run dry, and at the end."""
        up = self.upstream
        now = time.monotonic()
        due = final or (up.n_rows and (
            up.n_rows >= max(self.options.chunk_size, self.workers_window // 2)
            or now - self.last_up >= self.options.result_interval
            or (up.queued == 0 and self.dry)))
        if due:
            self.transport.send((pack_rows(up.take_rows()), final, self.capacity),
                                self.parent, tags.RESULTS)
            self.last_up = now
            if final:
                self.transport.flush()

    def all_ready(self) -> None:
        super().all_ready()
        self.transport.send(self.capacity, self.parent, tags.READY)

    def on_report(self, src: int, report: tuple) -> None:
        self.waiting_reports.append(src)
        self.transport.send(report, self.parent, tags.REPORT)

    def on_stop_request(self, signum: int) -> None:
        if not self.asked_stop:
            self.asked_stop = True
            self.transport.send(signum, self.parent, tags.STOP_REQUEST)
