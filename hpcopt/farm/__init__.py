"""The task farm: the one place where tasks and results cross ranks.

Dynamic mode (:func:`run_dynamic`): rank 0 (coordinator) hands out batches of
tasks, worker ranks return result rows; failures are retried on another rank; a
worker that sends REPORT during a task gets a DECISION back (HPO pruning); a stop
signal on any rank stops every rank after its current task.  With
``hierarchy = "nodes"`` a sub-coordinator per node sits between rank 0 and the
node's workers (:mod:`.tree`, :mod:`.coordinator`).  Static mode
(:func:`run_static`): each rank evaluates a contiguous range of tasks, streaming
it in chunks, and the rows meet at rank 0 (or go straight into a parallel HDF5
file) once per chunk round.  At world size 1 the coordinator evaluates tasks
itself.

What a task *is* stays outside: a :class:`TaskSource` on rank 0 decides what to
evaluate next and receives final rows, an :class:`Evaluator` on every rank
turns a task into an outcome.  Neither sends messages; the farm talks only
through a :class:`hpcopt.mpi.transport.Transport` (MPI, or threads in tests).

Modules: tasks (the contracts), evaluate (one task -> data, rows per batch),
worker, coordinator (and the sub-coordinator), tree (who talks to whom),
dynamic, static, guard (what an objective may not do to its rank), stopflag.
"""

from ..mpi.transport import as_transport
from .dynamic import run_dynamic
from .evaluate import ObjectiveExited, RowBuilder, TaskRunner, run_task
from .static import run_static
from .stopflag import LocalStop, ProcessStop, StopFlag
from .tasks import (Evaluator, FarmOptions, FarmStats, ManyOutcome, Outcome, Task, TaskBatch,
                    TaskSource, concat_rows)

__all__ = ["Evaluator", "FarmOptions", "FarmStats", "LocalStop", "ManyOutcome", "ObjectiveExited", "Outcome",
           "ProcessStop", "RowBuilder", "StopFlag", "Task", "TaskBatch", "TaskRunner",
           "TaskSource", "as_transport", "concat_rows", "run_dynamic", "run_static", "run_task"]
