"""The one campaign lifecycle (see :mod:`hpcopt.campaign.contract` for the steps).

Exit statuses (the table is in hpcopt.errors): 0 complete; 2 bad command line, config,
data or result file, or another run writing it (rank 0's message, before any MPI work);
3 stopped by SIGTERM/SIGUSR1 or a full file system after saving, 130 the same after
Ctrl-C (continue with --resume); 4 no task succeeded; 1 any other error (every rank
stopped, see hpcopt.mpi.runtime).
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import open_config, open_config_text, parse_run
from ..errors import (EXIT_NO_SUCCESS, EXIT_OK, EXIT_USAGE, ResultFileError, UsageError,
                      interrupted_exit_code)
from ..imports import add_search_dir
from ..logs import add_log_file, setup_logging
from ..mpi.runtime import (World, configure_waits, install_stop_handlers, run_spmd,
                           stop_reason, stop_signal_name)
from ..store import schema
from ..store.lock import acquire_writer_lock
from ..store.resultfile import (ResultStore, check_existing, check_new_output,
                                directory_problem)
from . import registry
from .contract import (CampaignKind, CampaignPlan, CampaignRequest, PlanSource, RunOutcome,
                       Session)
from .resume import canonical_hash, canonical_text, check_same_campaign
from .source import read_common

log = logging.getLogger("hpcopt")

ATTR_CANONICAL = "config_canonical"
ATTR_CAMPAIGN = "campaign"


@dataclass
class CampaignResult:
    """What :func:`execute` returns on every rank (summary only on rank 0)."""

    exit_code: int
    status: str = ""
    summary: dict | None = None
    error: str | None = None


def run_campaign(request: CampaignRequest) -> int:
    """The command line's entry: run the campaign on every rank; the exit status."""
    def main(world: World) -> int:
        install_stop_handlers()
        setup_logging(world.rank, quiet=request.quiet, verbose=request.verbose)
        result = execute(world, request)
        if world.is_root and result.error is not None:
            sys.stderr.write(f"hpcopt: error: {result.error}\n")
        return result.exit_code
    return run_spmd(main)


def execute(world: World, request: CampaignRequest) -> CampaignResult:
    """Validate on rank 0, then run the campaign on every rank (also used in-process by
    tests: the caller sets up signals and logging)."""
    plan, error, locks = None, None, []
    if world.is_root:
        try:
            plan = prepare(request, world.size, locks=locks)
            add_log_file(plan.paths.log)       # after the lock: both refuse planted links
        except UsageError as exc:
            error = str(exc)
            _release(locks)
    plan, error = world.bcast((plan, error))
    if error is not None:
        return CampaignResult(EXIT_USAGE, error=error)
    try:
        return _execute(world, request, plan)
    finally:
        _release(locks)               # the result file is closed: the next run may write it


def _execute(world: World, request: CampaignRequest, plan: CampaignPlan) -> CampaignResult:
    kind = registry.get(plan.kind)
    add_search_dir(plan.file.base_dir)
    waits = configure_waits(world, plan.run.wait)    # every wait from here follows [run] wait
    if world.is_root:
        log.info(f"{request.label or kind.name} on {world.size} rank(s); results in "
                 f"{plan.paths.output}")
        log.debug(f"waits: {waits.policy} -> spin {waits.spin_seconds:g} s ({waits.reason})")
    store = ResultStore(world, plan.paths.output,
                        parallel=None if kind.parallel_store else False)
    if plan.resume:
        store.resume(world_size=world.size)
        if plan.previous != plan.canonical:   # extended: the file now records this config
            store.set_attrs("/", _config_attrs(plan))
    session = Session(world, plan, store, request, stamp=lambda: _stamp(kind, plan))
    try:
        outcome = kind.run(session)
    finally:                      # an error must not leave the status lines running
        if session.progress is not None:
            session.progress.close()
    _finish(session, outcome)
    kind.finished(session, outcome)
    summary, code = None, EXIT_OK
    if world.is_root:
        summary, code = _report(kind, request, session, outcome)
    return CampaignResult(world.bcast(code), outcome.status, summary)


def _release(locks: list) -> None:
    while locks:
        locks.pop().release()


def _report(kind: CampaignKind, request: CampaignRequest, session: Session,
            outcome: RunOutcome) -> tuple[dict, int]:
    """Rank 0: print the summary; (summary, exit status)."""
    path = session.plan.paths.output
    summary = dict(outcome.summary, status=outcome.status, path=str(path),
                   elapsed=session.elapsed(), signal=outcome.signal or stop_signal_name())
    text = kind.format_summary(summary)
    if request.epilogue is not None:
        text = "\n".join([text, *request.epilogue(summary)])
    print(text, flush=True)
    why = stop_reason() or summary["signal"]       # a signal, or a full file system
    if outcome.status == "interrupted" and why:
        log.warning(stop_message(why, path, request))
        return summary, interrupted_exit_code(summary["signal"])
    if outcome.n_ok == 0 and outcome.n_failed > 0 and outcome.status == "complete":
        log.error(f"no task succeeded: {outcome.n_failed} failed"
                  + (f"; the first error: {outcome.first_error}" if outcome.first_error else ""))
        return summary, EXIT_NO_SUCCESS
    return summary, EXIT_OK


def stop_message(why: str, path: Path, request: CampaignRequest) -> str:
    """The one line that says why the campaign stopped and how to continue it."""
    why = "Ctrl-C (SIGINT)" if why == "SIGINT" else why
    cause = f"by {why}" if why.startswith(("SIG", "Ctrl-C")) else f"because {why}"
    return (f"stopped {cause}; everything finished is saved in {path}. Continue with: "
            f"{resume_command(request)}")


def resume_command(request: CampaignRequest) -> str:
    """The command line that continues this campaign: the same, with --resume."""
    args = [a for a in sys.argv[1:] if a != "--force"]
    if not args or request.command not in args:   # not run from the command line (demo, tests)
        args = [request.command, str(request.config)] + (
            ["-o", str(request.output)] if request.output else [])
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["hpcopt", *args])


# ---------------------------------------------------------------------------------------
# rank 0: everything that can be wrong is found before any MPI work

def prepare(request: CampaignRequest, world_size: int = 1, *,
            locks: list | None = None) -> CampaignPlan:
    """Parse and validate the config, resolve the paths, check the result file; with
    `locks`, take the writer lock (appended to it) before anything is removed or changed.
    Raises UsageError (exit 2)."""
    root, cf = open_config(request.config)
    kind = registry.for_config(request.command, root)
    src = read_common(root, cf, kind, request.output, options=request.options,
                      resume=request.resume, force=request.force)
    if locks is not None:          # one writer per result file: it names the holder
        problem = directory_problem(src.paths.output.parent)      # (made if missing)
        if problem:
            raise ResultFileError(f"{src.paths.output}: cannot create output directory: "
                                  f"{problem}")
        locks.append(acquire_writer_lock(src.paths.output))
    config, canonical = kind.plan(src)
    root.finish()
    paths, run = src.paths, src.run
    kind.check_world(config, world_size)
    canonical = {"campaign": kind.name, "run": {"seed": run.seed}, **canonical}
    plan = CampaignPlan(kind.name, cf, paths, config, run, request.resume, request.force,
                        canonical, options=dict(request.options))
    if request.resume:
        plan = replace(plan, previous=_check_resumable(kind, plan, request))
        kind.check_resume(plan)
    else:
        check_new_output(paths.output, force=request.force,
                         needed_bytes=kind.new_file_bytes(config))
        kind.before_create(plan)
    return plan


def _check_resumable(kind: CampaignKind, plan: CampaignPlan, request: CampaignRequest) -> dict:
    """The file's recorded canonical config, after checking that this config may resume it."""
    attrs, table_attrs = check_existing(plan.paths.output, kind=kind.family,
                                        main_table=kind.main_table)
    recorded = registry.of_file(attrs, table_attrs, plan.paths.output)
    if recorded.name != kind.name:
        raise ResultFileError(f"{plan.paths.output}: holds a {recorded.name!r} campaign, "
                              f"not {kind.name!r}")
    previous = _recorded_canonical(kind, attrs, plan, request)
    check_existing(plan.paths.output, kind=kind.family, main_table=kind.main_table,
                   n_rows=kind.recorded_rows(previous))
    extended = check_same_campaign(plan.paths.output, previous, plan.canonical,
                                   kind.extendable, plan.file.source)
    for key in extended:
        problem = kind.extension_problem(key, plan.config)
        if problem:
            raise ResultFileError(f"{plan.file.source}: {key}: cannot extend the campaign in "
                                  f"{plan.paths.output}: {problem}")
    if extended:
        log.info("extending the campaign: " + ", ".join(
            f"{k} {a} -> {b}" for k, (a, b) in extended.items()))
    return previous


def _recorded_canonical(kind: CampaignKind, attrs: dict, plan: CampaignPlan,
                        request: CampaignRequest) -> dict:
    """The canonical config of the file: its attribute (format 2), or the stored config
    text parsed again as if it were the file it came from (format 1)."""
    text = attrs.get(ATTR_CANONICAL)
    if isinstance(text, str):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        raise ResultFileError(f"{plan.paths.output}: the '{ATTR_CANONICAL}' attribute is "
                              "not a JSON object; the file may be damaged")
    stored = attrs.get(schema.ATTR_CONFIG)
    if not isinstance(stored, str):
        raise ResultFileError(f"{plan.paths.output}: records no config; it cannot be resumed")
    where = attrs.get("config_path") if isinstance(attrs.get("config_path"), str) else None
    try:
        root, cf = open_config_text(stored, where or plan.file.path)
        run = parse_run(root)
        _, canonical = kind.plan(PlanSource(root, cf, plan.paths, run, dict(request.options),
                                            resume=True))
    except UsageError as exc:
        raise ResultFileError(f"{plan.paths.output}: the config recorded in the file is no "
                              f"longer valid ({exc}); it cannot be resumed") from None
    return {"campaign": kind.name, "run": {"seed": run.seed}, **canonical}


def _config_attrs(plan: CampaignPlan) -> dict:
    return {schema.ATTR_CONFIG: plan.file.text, schema.ATTR_CONFIG_HASH:
            canonical_hash(plan.canonical), ATTR_CANONICAL: canonical_text(plan.canonical)}


def _stamp(kind: CampaignKind, plan: CampaignPlan) -> dict:
    """Root attributes of every new result file (the rest of the stamp is the store's)."""
    return {"kind": kind.family, "config_text": plan.file.text,
            "config_hash": canonical_hash(plan.canonical), "seed": plan.seed,
            "attrs": {ATTR_CAMPAIGN: kind.name, ATTR_CANONICAL: canonical_text(plan.canonical),
                      "config_path": str(plan.file.path.resolve())}}


def _finish(session: Session, outcome: RunOutcome) -> None:
    """Best, elapsed time and final status (every rank: collective in parallel mode)."""
    store = session.store
    if outcome.best is not None:
        store.set_attrs("best", outcome.best)
    store.set_attrs("/", {**outcome.attrs, "elapsed_last_run": session.elapsed()})
    store.close(outcome.status)

