"""Command-line parsing only: each command calls one run function (docs/cli.md).

The campaign subcommands come from the registry of campaign kinds
(hpcopt.campaign.registry); launching under mpiexec for `-n` is hpcopt.launch.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__
from .errors import EXIT_CTRL_C, UsageError
from .mpi.runtime import install_stop_handlers, uninstall_stop_handlers

EPILOG = """exit status: 0 done, 2 bad command line/config/data/result file (or another run is
writing it), 3 interrupted by SIGTERM/SIGUSR1 or a full file system (results saved: continue
with --resume), 130 the same after Ctrl-C, 4 no task succeeded, 1 any other error (after
every rank stopped). Docs: docs/<command>.md in the hpcopt repository."""

#: arguments every campaign subcommand has (the rest are its kinds' options)
CAMPAIGN_ARGS = ("command", "config", "output", "resume", "force", "quiet", "verbose", "np")
NP_HELP = ("re-launch under the bundled mpiexec with N ranks ('auto': what `hpcopt info` "
           "suggests); refused inside SLURM (use srun)")


def _campaign_parser(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG)
    p.add_argument("config", type=Path, help="TOML config file")
    p.add_argument("-o", "--output", help="result file (default: [output] path of the config); "
                                          "its companion files (log, lock, HPO journal, trial "
                                          "folders, checkpoints) go next to it")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true",
                   help="continue the campaign in the existing result file; never repeats a "
                        "completed task; a larger budget (samples, rounds, n_trials) extends it")
    g.add_argument("--force", action="store_true", help="overwrite an existing result file")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and the summary")
    p.add_argument("-v", "--verbose", action="store_true", help="debug messages (all ranks)")
    p.add_argument("-n", "--np", dest="np", metavar="N", default=argparse.SUPPRESS, help=NP_HELP)
    return p


def build_parser() -> argparse.ArgumentParser:
    from .campaign.registry import commands
    parser = argparse.ArgumentParser(
        prog="hpcopt",
        description="One MPI program for scientific optimization campaigns: chi-squared "
                    "fitting sweeps, parallel tempering and asynchronous HPO. Run it alone, "
                    "under mpiexec/mpirun, or under srun.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"hpcopt {__version__}")
    parser.add_argument("-n", "--np", dest="np", metavar="N", help=NP_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("info", help="MPI, HDF5, numba, CPUs, SLURM variables and a suggestion")
    p.add_argument("--json", action="store_true", help="one JSON object")

    for command, kinds in commands().items():
        p = _campaign_parser(sub, command, kinds[0].help)
        kinds[0].add_arguments(p)     # kinds that share a subcommand share its options

    p = sub.add_parser("report", help="summary, best result, plots, CSV/JSON export of a "
                                      "result file")
    p.add_argument("files", type=Path, nargs="+", metavar="FILE",
                   help="hpcopt result files (.h5); HPO files of one study (array tasks) "
                        "are also counted together, each trial once")
    p.add_argument("--json", action="store_true", help="one JSON object (see docs/report.md)")
    p.add_argument("--plots", metavar="DIR", type=Path, help="write PNG figures to DIR")
    p.add_argument("--export", metavar="DIR", type=Path,
                   help="write CSV tables, best_config.json, final_results.json, per-trial JSON")
    p.add_argument("--top", type=int, default=10, help="rows in the top-k table (default 10)")

    p = sub.add_parser("submit", help="render a jobs/ template from the config's [slurm] table "
                                      "and sbatch it")
    p.add_argument("config", type=Path, help="campaign config with a [slurm] table")
    p.add_argument("--template", required=True, help="single | mpirun | array")
    p.add_argument("--dry-run", action="store_true", help="print the batch script, submit nothing")
    p.add_argument("-o", "--output", help="result file (default: [output] path of the config)")

    p = sub.add_parser("warmstart", help="fill and inspect a warm-start fit history")
    ws = p.add_subparsers(dest="action", metavar="ACTION")
    ws.required = True
    add = ws.add_parser("add", help="add the best fits of finished sweep result files")
    add.add_argument("history")
    add.add_argument("results", nargs="+")
    from .warmstart.command import parse_condition
    add.add_argument("--condition", action="append", type=parse_condition, default=[],
                     metavar="NAME=VALUE", help="a condition for every file (overrides theirs)")
    show = ws.add_parser("show", help="list the recorded fits")
    show.add_argument("history")
    show.add_argument("--model", default=None)
    show.add_argument("--json", action="store_true")

    p = sub.add_parser("demo", help="the README's main job: an XPCS fit on bundled data")
    p.add_argument("-o", "--output", default="hpcopt-demo.h5",
                   help="result file (default: ./hpcopt-demo.h5, overwritten)")
    p.add_argument("-q", "--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    # first: building the parser imports every campaign kind (numpy, h5py, optuna: most of
    # a second), and a stop signal in that time must already stop a campaign cleanly
    install_stop_handlers()
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on bad usage, 0 for --help
        uninstall_stop_handlers()
        return int(exc.code or 0)
    try:
        if not runs_a_campaign_here(args):
            # nothing to checkpoint in this process (report, info, ...; under -n the ranks
            # install their own): Ctrl-C and kill act as usual, one that came meanwhile now
            uninstall_stop_handlers()
        if getattr(args, "np", None) is not None:
            from .launch import relaunch
            return relaunch(args.np, argv)
        return dispatch(args)
    except UsageError as exc:
        sys.stderr.write(f"hpcopt: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:       # Ctrl-C in report/info/submit (campaigns checkpoint instead)
        sys.stderr.write("hpcopt: interrupted\n")
        return EXIT_CTRL_C
    except BrokenPipeError:         # `hpcopt report FILE | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def runs_a_campaign_here(args) -> bool:
    """A campaign (or the demo) in this process, not a relaunch under mpiexec."""
    from .campaign.registry import commands
    return getattr(args, "np", None) is None and (args.command in commands()
                                                  or args.command == "demo")


def dispatch(args) -> int:
    cmd = args.command
    if cmd == "info":
        from .info import run_info
        return run_info(args.json)
    if cmd == "report":
        from .report.command import run_report
        return run_report(args.files, as_json=args.json, plots=args.plots, export=args.export,
                          top=args.top)
    if cmd == "submit":
        from .slurm import submit
        return submit(args.config, args.template, dry_run=args.dry_run, output=args.output)
    if cmd == "warmstart":
        from .warmstart import command as ws
        if args.action == "add":
            return ws.run_add(args.history, args.results, dict(args.condition))
        return ws.run_show(args.history, args.model, args.json)
    if cmd == "demo":
        from .toys.demo import run_demo
        return run_demo(args.output, quiet=args.quiet)
    from .campaign.contract import CampaignRequest
    from .campaign.lifecycle import run_campaign
    options = {k: v for k, v in vars(args).items() if k not in CAMPAIGN_ARGS}
    return run_campaign(CampaignRequest(cmd, args.config, args.output, args.resume, args.force,
                                        args.quiet, args.verbose, options))
