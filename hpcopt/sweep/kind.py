"""The sweep kind: multi-start fitting (or objective evaluation) over a start design."""

from __future__ import annotations

import argparse

from ..campaign.contract import CampaignKind, PlanSource, RunOutcome, Session
from ..campaign.resume import plain
from ..store import schema
from ..store.dtypes import sweep_dtype
from .config import SWEEP_TABLES, SweepConfig, parse_sweep_tables


class SweepKind(CampaignKind):
    name = family = command = "sweep"
    help = "multi-start chi-squared fitting over a parameter grid/sample (or any objective)"
    main_table = schema.MAIN_TABLE["sweep"]
    noun = "starts"
    tables = SWEEP_TABLES
    extendable = ("search.samples",)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--parameter-ranges", metavar="SPEC", dest="parameter_ranges",
            help='override [parameters] with a grid: "name:min:max:points,..." (e.g. '
                 '"D0:1e-12:1e-10:10,alpha:0.5:2.0:5"); points set the grid size, so they '
                 'count for [search] method = "grid" only (random, sobol and lhs use '
                 'min:max as bounds and [search] samples)')

    # -- rank 0 --------------------------------------------------------------------------
    def plan(self, src: PlanSource) -> tuple[SweepConfig, dict]:
        from .engine import build_target
        cfg = parse_sweep_tables(src.root, src.file, src.run,
                                 parameter_ranges=src.options.get("parameter_ranges"))
        build_target(cfg)           # imports, data and parameter names: exit 2 if bad
        return cfg, plain(cfg.effective)

    def extension_problem(self, name: str, cfg: SweepConfig) -> str | None:
        if cfg.search_method in ("grid", "lhs"):
            return (f"a {cfg.search_method} design of N points is not the start of a larger "
                    "one (random and sobol designs are)")
        if cfg.warmstart is not None:
            return "the warm-start plan was made for the old number of samples"
        return None

    def recorded_rows(self, canonical: dict) -> int | None:
        search = canonical.get("search") or {}
        if search.get("method") != "grid":
            return int(search.get("samples") or 0)
        n = 1
        for spec in (canonical.get("parameters") or {}).values():
            if spec.get("value") is None:
                n *= int(spec.get("points") or 1)
        return n

    def new_file_bytes(self, cfg: SweepConfig) -> int:
        return cfg.n_tasks * sweep_dtype(len(cfg.params)).itemsize

    # -- every rank ----------------------------------------------------------------------
    def run(self, session: Session) -> RunOutcome:
        from .engine import run_sweep
        return run_sweep(session)

    def sandbox_evaluator(self, spec: dict):
        from ..campaign.source import kind_config
        from .engine import sandbox_evaluator
        return sandbox_evaluator(kind_config(self, spec["config"], spec["output"],
                                             spec.get("options") or {}), spec)

    def finished(self, session: Session, outcome: RunOutcome) -> None:
        cfg: SweepConfig = session.plan.config
        if session.world.is_root and cfg.warmstart is not None and outcome.status == "complete":
            from ..warmstart.campaign import record_result
            record_result(cfg.warmstart, session.plan.paths.output)

    # -- rank 0, after the run -----------------------------------------------------------
    def format_summary(self, summary: dict) -> str:
        from .engine import format_summary
        return format_summary(summary)

    @property
    def report(self):
        from ..report.hooks_sweep import SWEEP_REPORT
        return SWEEP_REPORT


SWEEP = SweepKind()
