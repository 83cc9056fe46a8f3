"""Reading a campaign config into a kind's :class:`~hpcopt.campaign.contract.PlanSource`.

Shared by the lifecycle (rank 0, before any MPI work) and by processes that rebuild a
kind's config from the config file alone (the isolated evaluators of hpcopt.sandbox).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import check_tables, open_config, parse_output, parse_run
from ..tomlread import Table
from .contract import CampaignKind, PlanSource
from .paths import CampaignPaths

#: config tables the lifecycle reads itself (every kind accepts them)
COMMON_TABLES = ("output", "run", "slurm")


def read_common(root: Table, cf, kind: CampaignKind, output: str | None, *,
                options: dict[str, Any] | None = None, resume: bool = False,
                force: bool = False) -> PlanSource:
    """Check the tables, resolve the paths, read [run] (and validate [slurm])."""
    check_tables(root, COMMON_TABLES + kind.tables, kind.command)
    paths = CampaignPaths.resolve(output, parse_output(root, cf, cf.path.stem + ".h5").path)
    run = parse_run(root)
    if "slurm" in root:
        from ..slurm_config import parse_slurm_config
        parse_slurm_config(root, cf.source)
    return PlanSource(root, cf, paths, run, dict(options or {}), resume, force)


def kind_config(kind: CampaignKind, config: str | Path, output: str | None,
                options: dict[str, Any] | None = None) -> Any:
    """The kind's validated config object, rebuilt from the config file (a child process)."""
    root, cf = open_config(config)
    src = read_common(root, cf, kind, output, options=options, resume=True)
    config_object, _ = kind.plan(src)
    return config_object
