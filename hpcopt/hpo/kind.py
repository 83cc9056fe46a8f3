"""The HPO kind (`hpcopt hpo CONFIG`): the Optuna policy on rank 0, trials on the workers.

The task farm carries trials: rank 0 asks the policy (hpo.policy) for trials whenever a
worker has room and tells it each outcome as it arrives (no generation barrier); workers
send intermediate values (REPORT) and get the prune decision back.  The study lives in
the Optuna storage (by default an NFS-safe journal next to the result file, see
docs/hpo-storage.md), so array tasks on other nodes can join one study (they name it:
``--storage``/``--study-name``); each process writes its own HDF5 file, from rank 0
alone (one writer, growable table).  The pieces are in hpo/campaign.py; this module
imports them when a campaign runs, so the registry of kinds stays light.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..campaign.contract import CampaignKind, CampaignPlan, PlanSource, RunOutcome, Session
from ..errors import ResultFileError
from ..store import schema


class HpoKind(CampaignKind):
    name = family = command = "hpo"
    help = "asynchronous hyperparameter optimization (Optuna samplers and pruners)"
    main_table = schema.MAIN_TABLE["hpo"]
    noun = "trials"
    tables = ("hpo", "objective", "space", "resources")
    parallel_store = False                      # rank 0 writes; the table grows
    extendable = ("hpo.n_trials", "hpo.time_budget")
    signature_table = "hpo"
    joins_study = True                          # array tasks share one Optuna study

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from .campaign import add_study_arguments
        add_study_arguments(parser)

    def selects(self, root) -> bool:
        hpo = root.data.get("hpo")
        return not (isinstance(hpo, dict) and hpo.get("scheduler") == "pbt")

    # -- rank 0 --------------------------------------------------------------------------
    def plan(self, src: PlanSource):
        from .campaign import hpo_canonical, parse_hpo_campaign
        cfg = parse_hpo_campaign(src)
        from ..store.companion import check_companion
        from .storage import check_storage
        check_storage(cfg.hpo.hpo.storage, src.file.source)
        if cfg.hpo.hpo.storage.kind == "journal":   # Optuna opens it by name: no planted link
            check_companion(cfg.hpo.hpo.storage.location)
        if cfg.hpo.objective.function is not None:
            from .objective import load_objective
            load_objective(cfg.hpo)                 # import errors are config errors (exit 2)
        return cfg, hpo_canonical(cfg)

    def check_resume(self, plan: CampaignPlan) -> None:
        from .storage import study_problem
        cfg = plan.config
        problem = study_problem(cfg.hpo.hpo.storage, cfg.hpo.hpo.study_name, plan.paths.output)
        if problem:
            raise ResultFileError(f"{plan.paths.output}: --resume cannot continue the study: "
                                  f"{problem}")

    def before_create(self, plan: CampaignPlan) -> None:
        from .campaign import storage_text
        from .storage import existing_trials
        cfg = plan.config
        settings = cfg.hpo.hpo
        if cfg.fresh:
            # --force replaces this result file's own journal, never a study named in the
            # config (another result file may use it)
            Path(settings.storage.location).unlink(missing_ok=True)
            return
        if cfg.join:
            return                                   # an array task joins its siblings
        n = existing_trials(settings.storage, settings.study_name)
        if n:
            where = "" if cfg.default_storage else " (named in the config or on the command line)"
            raise ResultFileError(
                f"{plan.file.source}: study {settings.study_name!r} in "
                f"{storage_text(settings.storage)}{where} already has {n} trial(s): use "
                "--resume to continue it, another study name or storage, or --force with the "
                "default storage to start over")

    # -- every rank ----------------------------------------------------------------------
    def run(self, session: Session) -> RunOutcome:
        from .campaign import run_hpo
        return run_hpo(session)

    def sandbox_evaluator(self, spec: dict):
        from ..campaign.source import kind_config
        from .campaign import HpoEvaluator
        cfg = kind_config(self, spec["config"], spec["output"], spec["options"])
        return HpoEvaluator(cfg.hpo, spec["worker"])

    # -- rank 0, after the run -----------------------------------------------------------
    def format_summary(self, summary: dict) -> str:
        from .campaign import format_summary
        return format_summary(summary)

    @property
    def report(self):
        from ..report.hooks_hpo import HPO_REPORT
        return HPO_REPORT




HPO = HpoKind()
