"""The PBT kind: `hpcopt hpo CONFIG` with ``[hpo] scheduler = "pbt"`` (docs/pbt.md).

A kind of its own (its file's ``campaign`` attribute is "pbt"; the ``kind`` attribute
stays "hpo", the family whose report, exports and plots read its table): its budget is a
population times max_steps, its table holds lineage rows, its state is checkpoints.  The
campaign itself is hpo/pbt/campaign.py (imported when it runs).
"""

from __future__ import annotations

from ...campaign.contract import CampaignKind, PlanSource, RunOutcome, Session
from ...errors import ConfigError
from ...store import schema


class PbtKind(CampaignKind):
    name = "pbt"
    family = command = "hpo"
    help = "population-based training ([hpo] scheduler = \"pbt\")"
    main_table = schema.MAIN_TABLE["hpo"]
    noun = "segments"
    tables = ("hpo", "objective", "space", "resources")
    parallel_store = False
    signature_table = "hpo"

    def selects(self, root) -> bool:
        hpo = root.data.get("hpo")
        return isinstance(hpo, dict) and hpo.get("scheduler") == "pbt"

    # -- rank 0 --------------------------------------------------------------------------
    def plan(self, src: PlanSource):
        from ..campaign import hpo_canonical, in_array_job, parse_hpo_campaign
        from .runner import load_pbt_objective
        cfg = parse_hpo_campaign(src)
        load_pbt_objective(cfg.hpo)                  # wrong signature or import: exit 2
        if in_array_job():
            raise ConfigError("scheduler = \"pbt\" keeps one population in one result file: "
                              "run it as one job (--template single or mpirun), not an array",
                              key="hpo.scheduler", source=src.file.source)
        return cfg, hpo_canonical(cfg)

    # -- every rank ----------------------------------------------------------------------
    def run(self, session: Session) -> RunOutcome:
        from .campaign import run_pbt
        return run_pbt(session)

    def sandbox_evaluator(self, spec: dict):
        from ...campaign.source import kind_config
        from .campaign import PbtEvaluator
        cfg = kind_config(self, spec["config"], spec["output"], spec["options"])
        return PbtEvaluator(cfg.hpo, spec["worker"])

    # -- rank 0, after the run -----------------------------------------------------------
    def format_summary(self, summary: dict) -> str:
        from ..campaign import format_summary
        return format_summary(summary)

    @property
    def report(self):
        from ...report.hooks_hpo import PBT_REPORT
        return PBT_REPORT


PBT = PbtKind()
