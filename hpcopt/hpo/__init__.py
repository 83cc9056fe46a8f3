"""Asynchronous hyperparameter optimization: the MPI-free half.

The campaign (MPI coordinator loop, HDF5 store) uses:

* :func:`parse_hpo_config` -> :class:`HpoConfig` ([hpo], [objective], [space]);
* :class:`HpoPolicy` on the coordinator: ``ask() -> TrialSpec | None``,
  ``report(number, step, value) -> bool``, ``tell_result(TrialOutcome) -> [TrialRecord]``,
  ``drain_records()``, ``heartbeat()``, ``done``, ``stop()``, ``close()``;
* :func:`make_runner` on workers: ``runner(spec, report, worker) -> TrialOutcome``;
* :func:`trial_row_fields` / :func:`trial_row` for the result table.
"""

from .config import HpoConfig, HpoSettings, ObjectiveConfig, StorageSpec, parse_hpo_config
from .objective import TrialPruned, TrialTimeout, make_runner
from .policy import HpoPolicy, record_from_frozen
from .rows import params_from_row, trial_row, trial_row_fields
from .space import SearchSpace, parse_space
from .storage import open_storage
from .trials import ReportFn, TrialOutcome, TrialRecord, TrialSpec

__all__ = [
    "HpoConfig", "HpoSettings", "ObjectiveConfig", "StorageSpec", "parse_hpo_config",
    "TrialPruned", "TrialTimeout", "make_runner", "HpoPolicy", "record_from_frozen",
    "params_from_row", "trial_row", "trial_row_fields", "SearchSpace", "parse_space",
    "open_storage", "ReportFn", "TrialOutcome", "TrialRecord", "TrialSpec",
]
