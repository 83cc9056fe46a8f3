"""`hpcopt warmstart add|show`: fill and inspect a fit history from the shell.

    hpcopt warmstart add HISTORY RESULT.h5 [RESULT.h5 ...] [--condition NAME=VALUE ...]
    hpcopt warmstart show HISTORY [--model NAME] [--json]

(argument parsing is in hpcopt.cli). Exit status 2 for bad arguments or files (the
message names the file).
"""

from __future__ import annotations

import argparse
import json

from .conditions import add_result_file
from .history import read_records


def parse_condition(text: str) -> tuple[str, float | str]:
    """NAME=VALUE of --condition: a number when it parses as one, else text."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        return name.strip(), value.strip()


def run_add(history: str, results: list[str], conditions: dict) -> int:
    for path in results:
        rid = add_result_file(history, path, conditions=conditions)
        print(f"{path}: record {rid}")
    return 0


def run_show(history: str, model: str | None = None, as_json: bool = False) -> int:
    records = [r for r in read_records(history) if model is None or r["model"] == model]
    if as_json:
        print(json.dumps(records, indent=1))
        return 0
    for r in records:
        cond = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in r["conditions"].items())
        print(f"{r['record_id']:5d} {r['timestamp']} {r['model']} chi2={r['chi2']:.6g} [{cond}]")
    print(f"{len(records)} fit(s)")
    return 0
