"""Command-line parsing only: each command calls one run function (contract: README.md, docs/)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from . import __version__
from .errors import UsageError

EPILOG = """exit status: 0 done, 2 bad command line/config/data, 3 interrupted by SIGTERM/SIGUSR1
(results saved: continue with --resume), 1 any other error (after every rank stopped).
Docs: docs/<command>.md in the hpcopt repository."""


def _campaign_parser(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG)
    p.add_argument("config", type=Path, help="TOML config file")
    p.add_argument("-o", "--output", help="result file (default: [output] path of the config)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true",
                   help="continue the campaign in the existing result file; never repeats a "
                        "completed task")
    g.add_argument("--force", action="store_true", help="overwrite an existing result file")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and the summary")
    p.add_argument("-v", "--verbose", action="store_true", help="debug messages (all ranks)")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpcopt",
        description="One MPI program for scientific optimization campaigns: chi-squared "
                    "fitting sweeps, parallel tempering and asynchronous HPO. Run it alone, "
                    "under mpiexec/mpirun, or under srun.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"hpcopt {__version__}")
    parser.add_argument("-n", "--np", dest="np", metavar="N",
                        help="re-launch under the bundled mpiexec with N ranks ('auto': what "
                             "`hpcopt info` suggests); refused inside SLURM (use srun)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("info", help="MPI, HDF5, numba, CPUs, SLURM variables and a suggestion")
    p.add_argument("--json", action="store_true", help="one JSON object")

    p = _campaign_parser(sub, "sweep", "multi-start chi-squared fitting over a parameter "
                                       "grid/sample (or any objective)")
    p.add_argument("--parameter-ranges", metavar="SPEC",
                   help='override [parameters]: "name:min:max:points,..." '
                        '(e.g. "D0:1e-12:1e-10:10,alpha:0.5:2.0:5")')
    _campaign_parser(sub, "temper", "parallel tempering (replica exchange) campaign")
    _campaign_parser(sub, "hpo", "asynchronous hyperparameter optimization (Optuna samplers "
                                 "and pruners)")

    p = sub.add_parser("report", help="summary, best result, plots, CSV/JSON export of a "
                                      "result file")
    p.add_argument("file", type=Path, help="an hpcopt result file (.h5)")
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

    p = sub.add_parser("demo", help="the README's main job: an XPCS fit on bundled data")
    p.add_argument("-o", "--output", default="hpcopt-demo.h5",
                   help="result file (default: ./hpcopt-demo.h5, overwritten)")
    p.add_argument("-q", "--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on bad usage, 0 for --help
        return int(exc.code or 0)
    try:
        if args.np is not None:
            return relaunch(args.np, argv)
        return dispatch(args)
    except UsageError as exc:
        sys.stderr.write(f"hpcopt: error: {exc}\n")
        return exc.exit_code
    except BrokenPipeError:         # `hpcopt report FILE | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def dispatch(args) -> int:
    cmd = args.command
    if cmd == "info":
        from .info import run_info
        return run_info(args.json)
    if cmd == "sweep":
        from .sweep import engine
        req = engine.SweepRequest(args.config, args.output, args.resume, args.force,
                                  args.parameter_ranges)
        return _campaign(engine, lambda: engine.prepare(req), args)
    if cmd == "temper":
        from .temper import command
        return _campaign(command, lambda: command.prepare(args.config, args.output, args.resume,
                                                          args.force), args)
    if cmd == "hpo":
        from .hpo import command
        return _campaign(command, lambda: command.prepare(args.config, args.output, args.resume,
                                                          args.force), args)
    if cmd == "report":
        from .report.command import run_report
        return run_report(args.file, as_json=args.json, plots=args.plots, export=args.export,
                          top=args.top)
    if cmd == "submit":
        from .slurm import submit
        return submit(args.config, args.template, dry_run=args.dry_run, output=args.output)
    if cmd == "demo":
        from .demo import run_demo
        return run_demo(args.output, quiet=args.quiet)
    raise AssertionError(cmd)


def _campaign(module, prepare, args) -> int:
    from .campaign import run_campaign
    resume = args.resume
    return run_campaign(args.command, prepare=prepare,
                        run=lambda world, cfg: module.run(world, cfg, resume=resume,
                                                          quiet=args.quiet),
                        format_summary=module.format_summary, quiet=args.quiet,
                        verbose=args.verbose)


def find_mpiexec() -> str:
    """The mpiexec next to this Python (the venv's MPICH), else the one on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    if here.exists():
        return str(here)
    found = shutil.which("mpiexec")
    if not found:
        raise UsageError("no mpiexec found next to this Python or on PATH")
    return found


def relaunch(np_text: str, argv: list[str]) -> int:
    """`hpcopt -n N COMMAND ...`: exec the bundled mpiexec with N ranks of this program."""
    if os.environ.get("SLURM_JOB_ID"):
        raise UsageError("-n is for laptops and workstations; inside a SLURM allocation use "
                         "`srun hpcopt ...` (srun starts the ranks)")
    if os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_SIZE") or \
            os.environ.get("PMI_SIZE"):
        raise UsageError("-n given, but hpcopt already runs under an MPI launcher")
    if np_text == "auto":
        from .info import suggest
        n = suggest()["ranks"]
    else:
        try:
            n = int(np_text)
        except ValueError:
            raise UsageError(f"-n expects a number of ranks or 'auto', got {np_text!r}") from None
        if n < 1:
            raise UsageError(f"-n expects at least 1 rank, got {n}")
    rest = _strip_np(argv)
    cmd = [find_mpiexec(), "-n", str(n), sys.executable, "-m", "hpcopt", *rest]
    sys.stdout.flush()
    os.execv(cmd[0], cmd)
    return 0  # not reached


def _strip_np(argv: list[str]) -> list[str]:
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a in ("-n", "--np"):
            skip = True
            continue
        if a.startswith("--np="):
            continue
        if a.startswith("-n") and len(a) > 2 and a[2:].isdigit():
            continue
        out.append(a)
    return out
