"""Evaluating tasks on one rank: every way an objective can end becomes data.

:class:`TaskRunner` evaluates one task at a time: a raised exception (also
SystemExit and KeyboardInterrupt: they end the task, never the rank), a time-out,
a non-finite objective and a tampered timer become a status and a message.
``os._exit`` inside the objective ends the job with an error naming the rank and
the task (see :mod:`.guard`).  :class:`RowBuilder` collects the results of many
tasks in plain lists and makes the result rows per batch, column by column (a
structured-array row per task costs more than the empty tasks it records).
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from ..store import schema
from ..timelimit import TaskTimeout, time_limit
from .guard import ExitCalled
from .tasks import Evaluator, ManyOutcome, Outcome, Task, concat_rows


class ObjectiveExited(RuntimeError):
    """A task called os._exit on a rank without process isolation: the job ends."""


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class TaskRunner:
    """Evaluate tasks on `rank`; ``run(task, report) -> (status, message, values)``."""

    def __init__(self, evaluator: Evaluator, rank: int, timeout: float | None):
        self.evaluator, self.rank, self.timeout = evaluator, rank, timeout
        # the evaluator's loop over many tasks, when nothing needs a per-task time limit;
        # prepare() is for batches evaluated one task at a time
        self.evaluate_many = None if timeout else getattr(evaluator, "evaluate_many", None)
        self.prepare = None if self.evaluate_many else getattr(evaluator, "prepare", None)

    def run(self, task: Task, report: Callable[[int, float], bool]) -> tuple[int, str, dict]:
        try:
            if self.timeout:
                with time_limit(self.timeout):
                    outcome = self.evaluator.evaluate(task, report)
            else:
                outcome = self.evaluator.evaluate(task, report)
        except BaseException as exc:  # noqa: BLE001 - sorted out by outcome_of
            outcome = self.outcome_of(exc, task)
        return self.finish(task, outcome)

    def outcome_of(self, exc: BaseException, task: Task) -> Outcome:
        """How a task that raised `exc` is recorded (or, for os._exit, ends the job)."""
        if isinstance(exc, TaskTimeout):
            return Outcome(schema.TIMEOUT, {}, f"task {exc}")
        if isinstance(exc, ExitCalled):
            raise ObjectiveExited(
                f"task {task.task_id} called os._exit({exc.code}) in the objective on rank "
                f"{self.rank}; the job ends (rows recorded so far are kept: --resume continues). "
                f"Run such objectives with [run] isolation = \"process\" to record the task as "
                f"failed instead") from None
        if isinstance(exc, (Exception, SystemExit, KeyboardInterrupt)):
            # the objective's failure is a result, not a crash; SystemExit/KeyboardInterrupt
            # raised by an objective end its task only (a rank that left would hang the job)
            return Outcome(schema.FAILED, {}, _describe(exc))
        raise exc

    def finish(self, task: Task, outcome: Outcome) -> tuple[int, str, dict]:
        status, values, message = outcome
        if status != schema.OK:      # a failure keeps what was known before (start, params)
            inputs = self.evaluator.inputs(task)
            if inputs:
                values = {**inputs, **values}
        else:
            objective = values.get("objective")
            if objective is not None and not math.isfinite(float(objective)):
                status, message = schema.FAILED, f"objective is not finite ({objective})"
        return status, message, values

    def run_many(self, ids: np.ndarray, rows: "RowBuilder") -> int:
        """Evaluate the tasks `ids` (first attempts, no payload) with the evaluator's own
        loop into `rows`; a task that raises is recorded as run() records it.  Returns how
        many were evaluated (0: the evaluator declined; evaluate them one by one)."""
        done = 0
        while done < len(ids):
            out = self.evaluate_many(ids[done:])
            if out is None:          # not this evaluator's case (a fit method): stop asking
                self.evaluate_many = None
                self.prepare = getattr(self.evaluator, "prepare", None)
                return done
            rows.add_many(ids[done:done + out.n], out)
            done += out.n
            if out.error is not None:
                task = Task(int(ids[done]))
                t0 = time.time()
                status, message, values = self.finish(task, self.outcome_of(out.error, task))
                rows.add(task, status, message, values, t0, 0.0)
                done += 1
        return done


class RowBuilder:
    """Result rows of many tasks, built column by column when taken."""

    def __init__(self, dtype: np.dtype, rank: int):
        self.dtype, self.rank = dtype, rank
        self.template = schema.empty_rows(dtype, [0])
        self.segments: list[np.ndarray] = []   # rows made by add_many (and closed batches)
        self._clear()

    def _clear(self) -> None:
        self.ids: list[int] = []
        self.attempts: list[int] = []
        self.status: list[int] = []
        self.t_start: list[float] = []
        self.wall: list[float] = []
        self.messages: list[tuple[int, bytes]] = []
        self.values: dict[str, tuple[list[int], list]] = {}

    def __len__(self) -> int:
        return len(self.ids) + sum(len(s) for s in self.segments)

    def add(self, task: Task, status: int, message: str, values: dict, t_start: float,
            wall: float) -> None:
        i = len(self.ids)
        self.ids.append(task.task_id)
        self.attempts.append(task.attempt + 1)
        self.status.append(status)
        self.t_start.append(t_start)
        self.wall.append(wall)
        if message:
            self.messages.append((i, schema.encode_message(message)))
        for name, value in values.items():
            column = self.values.get(name)
            if column is None:
                column = self.values[name] = ([], [])
            column[0].append(i)
            column[1].append(value)

    def add_many(self, ids: np.ndarray, out: ManyOutcome) -> None:
        """The rows of first attempts evaluated by Evaluator.evaluate_many."""
        if len(self.ids):
            self.segments.append(self._take_added())
        n = out.n
        rows = np.repeat(self.template, n)
        rows["task_id"] = ids[:n]
        rows["attempts"] = 1
        rows["rank"] = self.rank
        status = np.asarray(out.status[:n])
        rows["t_start"] = out.t_start[:n]
        rows["wall"] = out.wall[:n]
        for name, column in out.values.items():
            rows[name] = column[:n]
        messages = dict(out.messages)
        objective = out.values.get("objective")
        if objective is not None:    # the check run() makes, for the whole batch
            bad = (status == schema.OK) & ~np.isfinite(np.asarray(objective[:n], dtype=float))
            for i in np.flatnonzero(bad).tolist():
                messages[i] = f"objective is not finite ({objective[i]})"
            status = np.where(bad, schema.FAILED, status)
        rows["status"] = status
        for i, text in messages.items():
            rows["message"][i] = schema.encode_message(text)
        self.segments.append(rows)

    def _take_added(self) -> np.ndarray:
        n = len(self.ids)
        rows = np.repeat(self.template, n)
        if n:
            rows["task_id"] = self.ids
            rows["attempts"] = self.attempts
            rows["rank"] = self.rank
            rows["status"] = self.status
            rows["t_start"] = self.t_start
            rows["wall"] = self.wall
            for i, text in self.messages:
                rows["message"][i] = text
            for name, (where, vals) in self.values.items():
                if len(where) == n:
                    rows[name] = vals
                else:
                    column = rows[name]
                    for i, v in zip(where, vals):
                        column[i] = v
        self._clear()
        return rows

    def take(self) -> np.ndarray:
        """The rows added since the last take, as one structured array."""
        rows = self._take_added()
        if self.segments:
            rows = concat_rows(self.segments + ([rows] if len(rows) else []), self.dtype)
            self.segments = []
        return rows


def run_task(evaluator: Evaluator, task: Task, dtype: np.dtype, rank: int,
             timeout: float | None, report: Callable[[int, float], bool]) -> np.ndarray:
    """Evaluate one task and build its result row (a one-row array)."""
    builder = RowBuilder(dtype, rank)
    t0 = time.time()
    status, message, values = TaskRunner(evaluator, rank, timeout).run(task, report)
    builder.add(task, status, message, values, t0, time.time() - t0)
    return builder.take()


def never_stop(step: int, value: float) -> bool:
    return False
