"""What every campaign command does around its own work, on every rank.

1. rank 0 validates config, data and output path (``prepare``) before any MPI
   work; a UsageError becomes one message and exit status 2 on every rank;
2. every rank runs the campaign (``run``) with stop signals caught;
3. rank 0 prints the summary; exit 0 (complete), 3 (interrupted by SIGTERM or
   SIGUSR1, checkpointed: continue with --resume), 130 (the same after Ctrl-C); see
   hpcopt.errors for the table of exit statuses.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, Callable

from .errors import EXIT_OK, UsageError, interrupted_exit_code
from .imports import add_search_dir
from .logs import add_log_file, log, setup_logging
from .mpi.runtime import World, install_stop_handlers, run_spmd, stop_reason, stop_signal_name
from .store.lock import acquire_writer_lock


def run_campaign(label: str, *, prepare: Callable[[], Any], run: Callable[[World, Any], dict],
                 format_summary: Callable[[dict], str], quiet: bool = False,
                 verbose: bool = False) -> int:
    def main(world: World) -> int:
        install_stop_handlers()
        setup_logging(world.rank, quiet=quiet, verbose=verbose)
        plan, error, lock = None, None, None
        if world.is_root:
            try:
                plan = prepare()
                # one writer per result file; then the log (both companions refuse links)
                lock = acquire_writer_lock(plan.output.path)
                add_log_file(plan.output.path)
            except UsageError as exc:
                error = str(exc)
                if lock is not None:
                    lock.release()
        plan, error = world.bcast((plan, error))
        if error is not None:
            if world.is_root:
                sys.stderr.write(f"hpcopt: error: {error}\n")
            return UsageError.exit_code
        add_search_dir(plan.file.base_dir)
        if world.is_root:
            log.info(f"{label} on {world.size} rank(s); results in {plan.output.path}")
        try:
            summary = run(world, plan)
        finally:
            if lock is not None:      # the result file is closed: the next run may write it
                lock.release()
        code = EXIT_OK
        if world.is_root:
            print(format_summary(summary), flush=True)
            why = stop_reason() or summary.get("signal")   # a signal, or a full disk
            if summary.get("status") == "interrupted" and why:
                code = interrupted_exit_code(stop_signal_name() or summary.get("signal"))
                log.warning(stop_message(why, plan.output.path))
        return world.bcast(code)

    return run_spmd(main)


def stop_message(why: str, path: Path) -> str:
    """The one line that says why the campaign stopped and how to continue it."""
    why = "Ctrl-C (SIGINT)" if why == "SIGINT" else why
    cause = f"by {why}" if why.startswith(("SIG", "Ctrl-C")) else f"because {why}"
    return (f"stopped {cause}; everything finished is saved in {path}. Continue with: "
            f"{resume_command(sys.argv[1:])}")


def resume_command(args: list[str]) -> str:
    """The command line that continues this campaign: the same, with --resume for --force."""
    args = [a for a in args if a != "--force"]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["hpcopt", *args])
