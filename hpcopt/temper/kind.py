"""The tempering kind (`hpcopt temper CONFIG`): replica exchange across the ranks.

The campaign itself is temper/runner.py (imported when it runs, so the registry of kinds
stays light).
"""

from __future__ import annotations

from ..campaign.contract import CampaignKind, PlanSource, RunOutcome, Session
from ..campaign.resume import plain
from ..errors import ConfigError
from ..store import schema


class TemperKind(CampaignKind):
    name = family = command = "temper"
    help = "parallel tempering (replica exchange) campaign"
    main_table = schema.MAIN_TABLE["temper"]
    noun = "rounds"
    tables = ("temper", "problem")
    extendable = ("temper.rounds",)         # extend.py: the chains continue
    signature_table = "temper"
    coordinator_evaluates = True            # every rank advances its replicas

    # -- rank 0 --------------------------------------------------------------------------
    def plan(self, src: PlanSource):
        from .config import parse_temper_config
        from .problems import make_problem
        cfg = parse_temper_config(src.root, src.file.source, src.file.base_dir)
        make_problem(cfg.problem, src.file.source)   # imports, data, finite start energy
        canonical = plain(cfg)
        canonical.pop("source")
        return cfg, {"temper": canonical}

    def recorded_rows(self, canonical: dict) -> int | None:
        return int((canonical.get("temper") or {}).get("rounds") or 0)

    def check_resume(self, plan) -> None:
        from .runner import check_checkpoint
        check_checkpoint(plan.paths.output)

    def check_world(self, cfg, world_size: int) -> None:
        if cfg.n_replicas < world_size:
            raise ConfigError(f"{cfg.n_replicas} replicas cannot fill {world_size} ranks: every "
                              "rank advances at least one replica; use more replicas or fewer "
                              "ranks", key="temper.replicas", source=cfg.source)

    # -- every rank ----------------------------------------------------------------------
    def run(self, session: Session) -> RunOutcome:
        from .runner import run_temper
        return run_temper(session)

    # -- rank 0, after the run -----------------------------------------------------------
    def format_summary(self, summary: dict) -> str:
        from .runner import format_summary
        return format_summary(summary)

    @property
    def report(self):
        from ..report.hooks_temper import TEMPER_REPORT
        return TEMPER_REPORT


TEMPER = TemperKind()
