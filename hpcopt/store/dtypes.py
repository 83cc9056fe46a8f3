"""Every result table's dtype, defined once (see docs/result-files.md for their meaning).

Campaign code fills rows of these dtypes; the report reads them.  The columns every task
table starts with, the status codes and the attribute names are in :mod:`.schema`.
Tables whose columns depend on the campaign (one column per parameter, per replica) are
built by functions of the campaign's shape, never by the campaign itself.
"""

from __future__ import annotations

from typing import Any, Iterable

import h5py
import numpy as np

from .schema import common_columns, status_dtype

#: variable-length UTF-8 strings
STR = h5py.string_dtype("utf-8")
#: how the hpo row kinds ("int", "float", "str") are stored
ROW_KINDS = {"int": "<i8", "float": "<f8", "str": STR}


# -- sweeps ------------------------------------------------------------------------------------

def sweep_dtype(n_params: int) -> np.dtype:
    """The `tasks` table: one row per start (initial point, refined point, chi2 or objective,
    evaluations)."""
    return np.dtype(common_columns() + [
        ("x0", "<f8", (n_params,)),        # start point
        ("x", "<f8", (n_params,)),         # refined point (x0 when [local] method = "none")
        ("objective", "<f8"),              # chi2 of a fit, or the user objective
        ("chi2_reduced", "<f8"),           # nan for plain objectives
        ("n_eval", "<i4"),                 # objective/model evaluations of this start
    ])


# -- HPO trials and PBT segments -------------------------------------------------------------

#: (name, row kind, meaning) of the fixed trial columns after task_id and status, in order;
#: 'value' is stored as 'objective'
TRIAL_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("task_id", "int", "trial number (unique in the study)"),
    ("state", "str", "complete | pruned | failed"),
    ("value", "float", "objective value; last reported value when pruned; NaN when failed"),
    ("params_json", "str", "real parameter values as a JSON object (lists stay lists)"),
    ("attempt", "int", "0 for a first run, k for the k-th retry"),
    ("retry_of", "int", "number of the first attempt, -1 for a first run"),
    ("retried", "int", "1 when this failed trial was queued again"),
    ("error", "str", "failed trials: the error message (empty otherwise)"),
    ("rank", "int", "MPI rank that ran the trial (-1 unknown)"),
    ("worker", "str", "rank and host, as the campaign names them"),
    ("started", "float", "unix time the trial started on the worker"),
    ("duration", "float", "wall seconds on the worker"),
    ("n_steps", "int", "number of intermediate values reported"),
    ("last_step", "int", "last reported step, -1 when none"),
    ("intermediate_json", "str", "JSON list of [step, value] pairs"),
    ("info_json", "str", "extra JSON the objective returned"),
)

#: the PBT columns that follow the trial columns in a PBT campaign's table
PBT_FIELDS: tuple[tuple[str, Any, str], ...] = (
    ("member", "<i4", "population member"),
    ("segment", "<i4", "the member's segment counter"),
    ("start_step", "<i8", "steps in the restored state"),
    ("end_step", "<i8", "steps after the segment"),
    ("parent_member", "<i4", "exploit: member whose checkpoint was restored; -1 otherwise"),
    ("parent_segment", "<i4", "segment of the restored checkpoint; -1 for a fresh start"),
    ("parent_task", "<i8", "task_id of the restored checkpoint; -1 for a fresh start"),
    ("perturbation_json", STR, "explore: what happened to each hyperparameter (JSON)"),
    ("checkpoint", STR, "checkpoint written, relative to the checkpoint root"),
)


def trials_dtype(columns: Iterable[tuple[str, str]]) -> np.dtype:
    """The `trials` table: task_id, status, then `columns` ((name, row kind) after
    task_id, as hpo.rows.trial_row_fields gives them; 'value' stored as 'objective')."""
    fields = [("task_id", "<i8"), ("status", status_dtype)]
    for name, kind in list(columns)[1:]:
        fields.append(("objective" if name == "value" else name, ROW_KINDS[kind]))
    return np.dtype(fields)


def lineage_dtype(columns: Iterable[tuple[str, str]]) -> np.dtype:
    """The `trials` table of a PBT campaign: the trial columns, then :data:`PBT_FIELDS`."""
    base = trials_dtype(columns)
    return np.dtype([(n, base.fields[n][0]) for n in base.names]
                    + [(name, dt) for name, dt, _ in PBT_FIELDS])


#: what a worker sends back for a trial or segment through the farm: the outcome as JSON text
OUTCOME_DTYPE = np.dtype(common_columns() + [("outcome", STR)])


# -- warm-start history ------------------------------------------------------------------------

#: the `fits` table of a warm-start history file
HISTORY_DTYPE = np.dtype([("record_id", "<i8"), ("timestamp", STR), ("model", STR),
                          ("params", STR), ("conditions", STR), ("chi2", "<f8"),
                          ("chi2_reduced", "<f8"), ("source", STR), ("source_created", STR)])
