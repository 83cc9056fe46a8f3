"""``python -m hpcopt.warmstart``: fill and inspect a fit history from the shell.

    python -m hpcopt.warmstart add HISTORY RESULT.h5 [RESULT.h5 ...] [--condition NAME=VALUE ...]
    python -m hpcopt.warmstart show HISTORY [--model NAME] [--json]

Exit status 2 for bad arguments or files (the message names the file).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import UsageError
from .conditions import add_result_file
from .history import read_records


def _condition(text: str) -> tuple[str, float | str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        return name.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpcopt.warmstart",
                                     description="Fill and inspect an hpcopt fit history.")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add the best fits of finished sweep result files")
    add.add_argument("history")
    add.add_argument("results", nargs="+")
    add.add_argument("--condition", action="append", type=_condition, default=[],
                     metavar="NAME=VALUE", help="a condition for every file (overrides theirs)")
    show = sub.add_parser("show", help="list the recorded fits")
    show.add_argument("history")
    show.add_argument("--model", default=None)
    show.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "add":
            for path in args.results:
                rid = add_result_file(args.history, path, conditions=dict(args.condition))
                print(f"{path}: record {rid}")
            return 0
        records = [r for r in read_records(args.history)
                   if args.model is None or r["model"] == args.model]
        if args.json:
            print(json.dumps(records, indent=1))
            return 0
        for r in records:
            cond = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in r["conditions"].items())
            print(f"{r['record_id']:5d} {r['timestamp']} {r['model']} chi2={r['chi2']:.6g} [{cond}]")
        print(f"{len(records)} fit(s)")
        return 0
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
