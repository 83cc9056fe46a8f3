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
from .tasks import Evaluator, Outcome, Task


class ObjectiveExited(RuntimeError):
    """A task called os._exit on a rank without process isolation: the job ends."""


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class TaskRunner:
    """Evaluate tasks on `rank`; ``run(task, report) -> (status, message, values)``."""

    def __init__(self, evaluator: Evaluator, rank: int, timeout: float | None):
        self.evaluator, self.rank, self.timeout = evaluator, rank, timeout
        self.prepare = getattr(evaluator, "prepare", None)

    def run(self, task: Task, report: Callable[[int, float], bool]) -> tuple[int, str, dict]:
        try:
            if self.timeout:
                with time_limit(self.timeout):
                    outcome = self.evaluator.evaluate(task, report)
            else:
                outcome = self.evaluator.evaluate(task, report)
        except TaskTimeout as exc:
            outcome = Outcome(schema.TIMEOUT, {}, f"task {exc}")
        except ExitCalled as exc:
            raise ObjectiveExited(
                f"task {task.task_id} called os._exit({exc.code}) in the objective on rank "
                f"{self.rank}; the job ends (rows recorded so far are kept: --resume continues). "
                f"Run such objectives with [run] isolation = \"process\" to record the task as "
                f"failed instead") from None
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            # the objective's failure is a result, not a crash; SystemExit/KeyboardInterrupt
            # raised by an objective end its task only (a rank that left would hang the job)
            outcome = Outcome(schema.FAILED, {}, _describe(exc))
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


class RowBuilder:
    """Result rows of many tasks, built column by column when taken."""

    def __init__(self, dtype: np.dtype, rank: int):
        self.dtype, self.rank = dtype, rank
        self.template = schema.empty_rows(dtype, [0])
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
        return len(self.ids)

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

    def take(self) -> np.ndarray:
        """The rows added since the last take, as one structured array."""
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
