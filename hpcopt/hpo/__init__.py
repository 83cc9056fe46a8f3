"""Asynchronous hyperparameter optimization: the MPI-free half.

The campaign (hpcopt.hpo.kind: the MPI coordinator loop, the HDF5 store) uses:

* :func:`config.parse_hpo_config` -> :class:`HpoConfig` ([hpo], [objective], [space]);
* :class:`policy.HpoPolicy` on the coordinator: ``ask() -> TrialSpec | None``,
  ``report(number, step, value) -> bool``, ``tell_result(TrialOutcome) -> [TrialRecord]``,
  ``drain_records()``, ``heartbeat()``, ``done``, ``stop()``, ``close()``;
* :func:`objective.make_runner` on workers: ``runner(spec, report, worker) -> TrialOutcome``;
* :func:`rows.trial_row_fields` / :func:`rows.trial_row` for the result table.

The package imports nothing itself, so reading a result file never loads Optuna.
"""
