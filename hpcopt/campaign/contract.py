"""The campaign-kind contract: what a kind provides and what the lifecycle gives it.

A *kind* (sweep, temper, hpo, pbt) is one :class:`CampaignKind` object, registered once in
:mod:`hpcopt.campaign.registry`.  The lifecycle (:mod:`hpcopt.campaign.lifecycle`) does
everything around the kind's own work, the same way for every kind:

1. rank 0: resolve the paths (:class:`~hpcopt.campaign.paths.CampaignPaths`), let the kind
   parse and validate its config into a plan (:meth:`CampaignKind.plan`), check the result
   file (new: room and --force; --resume: same campaign, by the canonical config), take
   the writer lock; a UsageError here is exit 2 on every rank, before any MPI work;
2. every rank: open the result file for --resume (the kind creates a new one through
   :meth:`Session.create`, when it knows the layout), run the kind
   (:meth:`CampaignKind.run`), write best and elapsed time, set the final status;
3. rank 0: the summary, the exit status.

The kind never opens, locks or closes the result file and never decides the exit status;
the lifecycle never knows what a row means.  Analysis (``hpcopt report``) reaches a kind
through :attr:`CampaignKind.report` (:class:`hpcopt.report.hooks.ReportHooks`), which must
not import MPI.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:   # annotations only: the contract imports nothing that imports a kind
    from ..config import ConfigFile, RunConfig
    from ..mpi.runtime import World
    from ..progress import Progress
    from ..report.hooks import ReportHooks
    from ..store.resultfile import ResultStore, TableSpec
    from ..tomlread import Table
    from .paths import CampaignPaths


@dataclass(frozen=True)
class CampaignRequest:
    """What the command line (or a test, or `hpcopt demo`) asks for."""

    command: str                        # the subcommand: sweep | temper | hpo
    config: Path
    output: str | None = None           # -o: taken from the current directory
    resume: bool = False
    force: bool = False
    quiet: bool = False
    verbose: bool = False
    options: dict[str, Any] = field(default_factory=dict)   # kind-specific (--parameter-ranges)
    label: str | None = None            # log label ("demo sweep"); default: the kind's name
    epilogue: Callable[[dict], list[str]] | None = None     # extra summary lines (the demo)


@dataclass(frozen=True)
class PlanSource:
    """What a kind's :meth:`CampaignKind.plan` reads: the whole config (the lifecycle has
    read [output], [run] and [slurm] from it already), the resolved paths, the [run] table
    and the command-line options."""

    root: "Table"
    file: "ConfigFile"
    paths: "CampaignPaths"
    run: "RunConfig"
    options: dict[str, Any] = field(default_factory=dict)
    resume: bool = False
    force: bool = False


@dataclass(frozen=True)
class CampaignPlan:
    """Everything validated on rank 0 and broadcast to every rank before any MPI work.

    `config` is the kind's own validated config object; `canonical` the canonical form
    of the whole campaign (what --resume compares, see campaign.resume); `previous` the
    canonical form recorded in the file being resumed (None for a new campaign), so a
    kind can see what an extension grew.
    """

    kind: str
    file: "ConfigFile"
    paths: "CampaignPaths"
    config: Any
    run: "RunConfig"
    resume: bool
    force: bool
    canonical: dict
    previous: dict | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.run.seed


@dataclass
class RunOutcome:
    """What a kind's run returns on every rank (identical where the file is written in
    parallel; only rank 0's matters otherwise)."""

    status: str                          # "complete" | "interrupted"
    summary: dict                        # the kind's summary, for its format_summary (rank 0)
    best: dict | None = None             # attributes of the `best` group; None: nothing yet
    attrs: dict = field(default_factory=dict)      # extra root attributes at the end
    n_ok: int | None = None              # task campaigns: successful tasks (None: no tasks)
    n_failed: int = 0
    first_error: str = ""                # the first failure message, for "no task succeeded"
    signal: str | None = None            # the stop signal, when a rank other than 0 got it


class Session:
    """What the lifecycle hands a running kind (every rank): the world, the plan, the
    result file, progress and the clock.  Created by the lifecycle only."""

    def __init__(self, world: "World", plan: CampaignPlan, store: "ResultStore",
                 request: CampaignRequest, stamp: Callable[[], dict]):
        import time
        self.world, self.plan, self.store, self.request = world, plan, store, request
        self._stamp = stamp
        self.t0 = time.monotonic()
        self.progress: "Progress | None" = None

    @property
    def resume(self) -> bool:
        return self.plan.resume

    @property
    def quiet(self) -> bool:
        return self.request.quiet

    def elapsed(self) -> float:
        import time
        return time.monotonic() - self.t0

    def create(self, *, tables: dict[str, "TableSpec"], attrs: dict | None = None,
               arrays: dict | None = None) -> None:
        """Create the new result file (collective where it is written in parallel): the
        lifecycle adds the root attributes every file has (kind, config, seed, ...)."""
        stamp = self._stamp()
        common = stamp.pop("attrs")
        self.store.create(**stamp, tables=tables, attrs={**common, **(attrs or {})},
                          arrays=arrays)

    def start_progress(self, total: int, *, done: int = 0, label: str | None = None,
                       unit: str = "task") -> "Progress":
        """Progress on rank 0 (silent elsewhere and with --quiet); closed by the lifecycle."""
        from ..progress import Progress
        self.progress = Progress(total, label=label or self.plan.kind, unit=unit, done=done,
                                 quiet=self.request.quiet or not self.world.is_root)
        return self.progress


class CampaignKind:
    """Base class of the campaign kinds: override what the kind provides.

    Required: :attr:`name`, :attr:`family`, :attr:`command`, :attr:`main_table`,
    :attr:`tables` (the config tables it accepts), :meth:`plan`, :meth:`run`,
    :meth:`format_summary`, :attr:`report`.
    """

    name: str = ""                 # registry key; the file's `campaign` attribute
    family: str = ""               # the file's `kind` attribute (report --json: sweep|temper|hpo)
    command: str = ""              # the subcommand that runs it
    help: str = ""
    main_table: str = ""           # one row per task / round / trial / segment
    noun: str = "tasks"            # what a main-table row is called in messages
    tables: tuple[str, ...] = ()   # config tables it accepts
    parallel_store: bool = True    # the result file may be written with parallel HDF5
    #: canonical-config keys (dotted) that --resume may raise: the campaign is extended
    extendable: tuple[str, ...] = ()
    #: the config table that marks a config as this kind's (None: the default kind)
    signature_table: str | None = None
    #: SLURM array tasks of this kind join one study (the array template)
    joins_study: bool = False
    #: rank 0 also evaluates when there are other ranks (False: it only coordinates)
    coordinator_evaluates: bool = False

    # -- command line ------------------------------------------------------------------
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Kind-specific options of its subcommand (stored in CampaignRequest.options)."""

    def selects(self, root: "Table") -> bool:
        """For a subcommand shared by several kinds: does this config belong to this kind?"""
        return True

    # -- rank 0, before any MPI work ---------------------------------------------------
    def plan(self, src: PlanSource) -> tuple[Any, dict]:
        """Parse and validate the kind's tables of ``src.root``: (config object, canonical
        form of what determines the results, see campaign.resume). Loads data and imports
        objectives where that can fail. Raises UsageError (exit 2). Also called on the
        config text recorded in a format-1 file, to learn its canonical form."""
        raise NotImplementedError

    def check_world(self, config: Any, world_size: int) -> None:
        """Refuse a world size the campaign cannot use (e.g. fewer replicas than ranks)."""

    def extension_problem(self, name: str, config: Any) -> str | None:
        """Why raising the extendable key `name` cannot extend this campaign (or None)."""
        return None

    def new_file_bytes(self, config: Any) -> int:
        """Bytes the preallocated tables of a new result file need (the disk check)."""
        return 0

    def recorded_rows(self, canonical: dict) -> int | None:
        """The main-table rows a campaign of this canonical form has at least (a resumed
        file with fewer is damaged); None: the table grows as it goes."""
        return None

    def check_resume(self, plan: CampaignPlan) -> None:
        """Extra checks of a file to resume (rank 0; the file was validated already):
        e.g. that the HPO study it names still exists. Raises UsageError."""

    def before_create(self, plan: CampaignPlan) -> None:
        """Rank 0, a new campaign, after the checks: remove this campaign's own stale
        companion files (e.g. the default journal of a --force run)."""

    # -- every rank --------------------------------------------------------------------
    def run(self, session: Session) -> RunOutcome:
        raise NotImplementedError

    def sandbox_evaluator(self, spec: dict):
        """The evaluator inside an isolated child process (``[run] isolation``)."""
        raise NotImplementedError(f"{self.name} campaigns have no isolated evaluator")

    def finished(self, session: Session, outcome: RunOutcome) -> None:
        """Every rank, after the result file is closed (e.g. record a fit in a history)."""

    # -- rank 0, after the run ---------------------------------------------------------
    def format_summary(self, summary: dict) -> str:
        raise NotImplementedError

    # -- analysis (no MPI) -------------------------------------------------------------
    @property
    def report(self) -> "ReportHooks":
        raise NotImplementedError
