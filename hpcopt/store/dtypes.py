"""Every result table's dtype and the meaning of its columns, defined once
(docs/result-files.md describes them for users).

Campaign code fills rows of these dtypes (*row dtypes*: a sweep's points and tempering's
per-replica values are vector fields); the store keeps their vectors beside the compound
table (:mod:`.layout`) and writes :func:`column_docs` as each table's ``columns``
attribute.  The columns every task table starts with, the status codes and the attribute
names are in :mod:`.schema`.  Tables whose columns depend on the campaign (one column per
parameter, per observable) are built by functions of the campaign's shape, never by the
campaign itself.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Sequence

import h5py
import numpy as np

from .layout import TableLayout
from .schema import MESSAGE_LEN, common_columns, status_dtype

#: variable-length UTF-8 strings
STR = h5py.string_dtype("utf-8")
#: how the hpo row kinds are stored: "int" int64, "float" float64 (NaN when missing), "str"
#: text, "json" JSON text of any value (lists, booleans, mixed choices)
ROW_KINDS = {"int": "<i8", "float": "<f8", "str": STR, "json": STR}


# -- the columns every task table starts with --------------------------------------------------

#: (unit, description) of schema.common_columns(); units: "s" seconds, "" for counts, labels,
#: text and dimensionless numbers (and numbers in the user's own units)
COMMON_DOCS: dict[str, tuple[str, str]] = {
    "task_id": ("", "task number: row i is task i"),
    "status": ("", "pending | ok | failed | timeout | pruned (HDF5 enum; codes 0-4); "
                   "pending rows are not written yet"),
    "attempts": ("", "times the task was run (retries included)"),
    "rank": ("", "MPI rank that ran the task"),
    "t_start": ("s", "unix time the task started"),
    "wall": ("s", "wall-clock seconds the task took"),
    "message": ("", f"error message of a failed task (UTF-8, at most {MESSAGE_LEN} bytes)"),
}


# -- sweeps ------------------------------------------------------------------------------------

#: the sweep's vector fields (stored as one column per parameter: x0_<name>, x_<name>)
SWEEP_POINTS = ("x0", "x")
#: a parameter's start column in Result.frame() (the refined point takes the name itself)
START_SUFFIX = "_start"


def sweep_dtype(n_params: int) -> np.dtype:
    """The `tasks` table's rows: one per start (start point, refined point, chi2 or
    objective, evaluations)."""
    return np.dtype(common_columns() + [
        ("x0", "<f8", (n_params,)),        # start point
        ("x", "<f8", (n_params,)),         # refined point (x0 when [local] method = "none")
        ("objective", "<f8"),              # chi2 of a fit, or the user objective
        ("chi2_reduced", "<f8"),           # nan for plain objectives
        ("n_eval", "<i4"),                 # objective/model evaluations of this start
    ])


SWEEP_DOCS: dict[str, tuple[str, str]] = {
    "task_id": ("", "start number: row i is start i of the design"),
    "x0": ("", "start point"),
    "x": ("", "refined point (the start when [local] method = \"none\")"),
    "objective": ("", "chi-squared of a fit, or the value of the objective"),
    "chi2_reduced": ("", "chi-squared per degree of freedom (NaN for plain objectives)"),
    "n_eval": ("", "objective or model evaluations of this start"),
}


def sweep_labels(param_names: Sequence[str]) -> dict[str, list[str]]:
    """The labels of the sweep's vector fields: the parameter names (layout.TableLayout)."""
    return {field: list(param_names) for field in SWEEP_POINTS}


def sweep_frame_names(param_names: Sequence[str]) -> dict[str, list[str]]:
    """The columns of the sweep's points in Result.frame(): refined ``<name>``, start
    ``<name>_start``."""
    return {"x": list(param_names), "x0": [n + START_SUFFIX for n in param_names]}


def sweep_name_problem(param_names: Sequence[str]) -> str | None:
    """Why these parameter names would give the sweep's table or frame two columns of one
    name (a fixed column, or another parameter's start column), or None."""
    fixed = [n for n in sweep_dtype(1).names if n not in SWEEP_POINTS]
    names = list(param_names)
    for name in names:
        if name in fixed:
            return (f"parameter {name!r} has the name of a column of the sweep's table "
                    f"({', '.join(fixed)}): rename it")
        start = name + START_SUFFIX
        if start in fixed or start in names:
            return (f"parameter {name!r}: its start column {start!r} would have the name of "
                    f"{'a column of the table' if start in fixed else 'another parameter'}: "
                    "rename it")
    return None


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
#: the prefix of a trial table's parameter columns
PARAM_PREFIX = "p_"
#: an always-active int parameter a failed trial never drew (its int64 column cannot hold NaN)
INT_MISSING = np.iinfo(np.int64).min

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


_TRIAL_UNITS = {"started": "s", "duration": "s"}
TRIAL_DOCS: dict[str, tuple[str, str]] = {
    **{("objective" if n == "value" else n): (_TRIAL_UNITS.get(n, ""), d)
       for n, _, d in TRIAL_FIELDS},
    "status": COMMON_DOCS["status"],
    **{n: ("", d) for n, _, d in PBT_FIELDS},
}


def parameter_description(name: str, dt: np.dtype) -> str:
    """The description of the ``p_<name>`` column of a parameter stored as `dt`."""
    if dt.kind in "iu":
        how = f"an integer ({INT_MISSING} if a failed trial never drew it)"
    elif dt.kind == "f":
        how = "a number, NaN when the parameter is inactive"
    else:
        how = ("text: the string of a string choice, JSON text of any other value (lists, "
               "booleans, mixed choices); empty when the parameter is inactive")
    return f"parameter {name}: {how}"


#: what a worker sends back for a trial or segment through the farm: the outcome as JSON text
OUTCOME_DTYPE = np.dtype(common_columns() + [("outcome", STR)])


# -- tempering ---------------------------------------------------------------------------------

def round_dtype(n_replicas: int, observable_names=()) -> np.dtype:
    """One row per exchange round; task_id = round number; arrays indexed by replica id
    (the `rounds` table's rows with a status column: schema.with_status).

    Pair columns (index k = slots k, k+1) exist only with 2 or more replicas.
    """
    r = (n_replicas,)
    fields = [("task_id", "<i8"),
              ("slot", "<i4", r),               # temperature index of each replica this round
              ("temperature", "<f8", r),        # its temperature this round
              ("energy", "<f8", r),             # its energy after the round's Metropolis steps
              ("move_acceptance", "<f8", r)]    # fraction of its moves accepted this round
    fields += [(name, "<f8", r) for name in observable_names]
    if n_replicas > 1:
        p = (n_replicas - 1,)
        fields += [("swap_attempted", "?", p), ("swap_accepted", "?", p),
                   ("swap_probability", "<f8", p)]   # min(1, exp(dbeta dE)) before the swap
    fields += [("best_energy", "<f8")]              # lowest energy seen so far, all replicas
    return np.dtype(fields)


def sample_dtype(state_shape, state_dtype, observable_names=()) -> np.dtype:
    """One row per stored T_min sample (the `samples` table); task_id = round number."""
    return np.dtype([("task_id", "<i8"), ("replica", "<i4"), ("temperature", "<f8"),
                     ("energy", "<f8"), ("state", np.dtype(state_dtype).str, tuple(state_shape))]
                    + [(name, "<f8") for name in observable_names])


#: the `pairs` table: neighbour-pair exchange statistics (after burn-in)
PAIR_DTYPE = np.dtype([("task_id", "<i8"), ("t_low", "<f8"), ("t_high", "<f8"),
                       ("attempted", "<i8"), ("accepted", "<i8"), ("acceptance", "<f8"),
                       ("mean_probability", "<f8")])
#: the `replicas` table: per-replica statistics
REPLICA_DTYPE = np.dtype([("task_id", "<i8"), ("round_trips", "<i8"), ("mean_round_trip", "<f8"),
                          ("best_energy", "<f8"), ("best_round", "<i8"), ("final_slot", "<i4"),
                          ("move_acceptance", "<f8")])
#: the `slots` table: per-temperature statistics (after burn-in)
SLOT_DTYPE = np.dtype([("task_id", "<i8"), ("temperature", "<f8"), ("n", "<i8"),
                       ("mean_energy", "<f8"), ("var_energy", "<f8")])

_ENERGY = "in the problem's energy units"
ROUND_DOCS: dict[str, tuple[str, str]] = {
    "task_id": ("", "round number"),
    "slot": ("", "temperature index of each replica this round (0 = T_min)"),
    "temperature": ("", f"temperature of each replica this round ({_ENERGY})"),
    "energy": ("", "energy of each replica after the round's Metropolis steps"),
    "move_acceptance": ("", "fraction of each replica's moves accepted this round"),
    "swap_attempted": ("", "exchange of neighbour pair k (slots k, k+1) attempted this round"),
    "swap_accepted": ("", "exchange of neighbour pair k (slots k, k+1) accepted this round"),
    "swap_probability": ("", "min(1, exp(dbeta dE)) of neighbour pair k before the swap"),
    "best_energy": ("", "lowest energy seen so far, over all replicas"),
}
SAMPLE_DOCS: dict[str, tuple[str, str]] = {
    "task_id": ("", "round the sample was taken after"),
    "replica": ("", "replica at T_min in that round"),
    "temperature": ("", f"T_min ({_ENERGY})"),
    "energy": ("", "energy of the sample"),
    "state": ("", "the sample's state: the parameters in param_names order, or the spins"),
}
PAIR_DOCS: dict[str, tuple[str, str]] = {
    "task_id": ("", "neighbour pair k: slots k and k+1"),
    "t_low": ("", f"temperature of slot k at the end ({_ENERGY})"),
    "t_high": ("", f"temperature of slot k+1 at the end ({_ENERGY})"),
    "attempted": ("", "exchanges attempted after burn-in"),
    "accepted": ("", "exchanges accepted after burn-in"),
    "acceptance": ("", "accepted / attempted"),
    "mean_probability": ("", "mean exchange probability min(1, exp(dbeta dE))"),
}
REPLICA_DOCS: dict[str, tuple[str, str]] = {
    "task_id": ("", "replica id"),
    "round_trips": ("", "T_min -> T_max -> T_min round trips after burn-in"),
    "mean_round_trip": ("", "mean rounds per round trip (NaN without one)"),
    "best_energy": ("", "lowest energy the replica reached"),
    "best_round": ("", "round it was reached in (-1: the start state)"),
    "final_slot": ("", "temperature index at the end"),
    "move_acceptance": ("", "fraction of all its moves accepted"),
}
SLOT_DOCS: dict[str, tuple[str, str]] = {
    "task_id": ("", "slot: temperature index (0 = T_min)"),
    "temperature": ("", f"its temperature at the end ({_ENERGY})"),
    "n": ("", "energies recorded at this slot after burn-in"),
    "mean_energy": ("", "their mean"),
    "var_energy": ("", "their variance"),
}


# -- warm-start history ------------------------------------------------------------------------

#: the `fits` table of a warm-start history file
HISTORY_DTYPE = np.dtype([("record_id", "<i8"), ("timestamp", STR), ("model", STR),
                          ("params", STR), ("conditions", STR), ("chi2", "<f8"),
                          ("chi2_reduced", "<f8"), ("source", STR), ("source_created", STR)])


# -- the `columns` attribute -----------------------------------------------------------------

#: the column meanings of each result table (COMMON_DOCS apply to every table)
TABLE_DOCS: dict[str, dict[str, tuple[str, str]]] = {
    "tasks": SWEEP_DOCS, "trials": TRIAL_DOCS, "rounds": ROUND_DOCS, "samples": SAMPLE_DOCS,
    "pairs": PAIR_DOCS, "replicas": REPLICA_DOCS, "slots": SLOT_DOCS,
}
#: the table attribute holding :func:`column_docs` as JSON
COLUMNS_ATTR = "columns"


def _doc(table: str, field: str, vector: bool) -> tuple[str, str]:
    docs = TABLE_DOCS.get(table, {})
    if field in docs:
        return docs[field]
    if field in COMMON_DOCS:
        return COMMON_DOCS[field]
    if table == "rounds" and vector:
        return "", f"observable {field} of each replica after the round"
    if table == "samples":
        return "", f"observable {field} of the sample"
    return "", ""


def column_docs(table: str, layout: TableLayout,
                units: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """{column: {"unit", "description"}} for every column a user sees of `table` (compound
    columns, then a side dataset's field with its "dataset"), in row order.

    `units`: units by stored column (a sweep's parameters).
    """
    units = dict(units or {})
    out: dict[str, dict[str, str]] = {}
    vectors = {v.field: v for v in layout.vectors}
    for field in layout.row_dtype.names:
        v = vectors.get(field)
        unit, text = _doc(table, field, v is not None or
                          layout.row_dtype[field].subdtype is not None)
        if field.startswith(PARAM_PREFIX) and table == "trials" and not text:
            name = field[len(PARAM_PREFIX):]
            text = parameter_description(name, layout.row_dtype[field])
        if v is not None and v.columns is not None:
            for column in v.columns:
                label = column[len(field) + 1:]
                out[column] = {"unit": units.get(column, unit), "description": f"{text}: {label}"}
        elif v is not None:
            out[field] = {"unit": units.get(field, unit), "description": text,
                          "dataset": v.dataset}
        else:
            out[field] = {"unit": units.get(field, unit), "description": text}
    return out


def columns_attr(docs: Mapping[str, Mapping[str, str]]) -> str:
    return json.dumps(docs, ensure_ascii=False)
