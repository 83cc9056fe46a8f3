"""Run the benchmarks and write bench/results.json (figures are ratios against baselines
measured in the same run).  `python -m bench [farm kernels temper hpo ...]` runs a subset."""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
os.environ["PYTHONPATH"] = os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")])

SUITES = {"farm": "bench_farm", "farm_scaling": "bench_farm_scaling", "kernels": "bench_kernels",
          "temper": "bench_temper", "temper_mpi": "bench_temper_mpi", "hpo": "bench_hpo",
          "hpo_coordinator": "bench_hpo_coordinator",
          "fit": "bench_fit", "warmstart": "bench_warmstart", "hpo_mpi": "bench_hpo_mpi",
          "load": "bench_load", "guards": "bench_guards"}


def main(argv: list[str]) -> int:
    # hpo_coordinator is a part of hpo, to be run alone
    names = argv or [n for n in SUITES if n != "hpo_coordinator"]
    results_path = BENCH / "results.json"
    for name in names:
        module_name = SUITES.get(name, name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                print(f"bench: no suite {name!r} yet, skipped", file=sys.stderr)
                continue
            raise
        t0 = time.monotonic()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        figures = module.run()
        save(results_path, name, {"figures": figures, "seconds": round(time.monotonic() - t0, 1),
                                  "when": _dt.datetime.now().isoformat(timespec="seconds"),
                                  "machine": f"{platform.node()} {os.cpu_count()} CPUs"})
        print_table(name, figures)
    print(f"bench: figures in {results_path}", file=sys.stderr)
    return 0


def save(results_path: Path, name: str, entry: dict) -> None:
    """Merge one suite's entry into results.json: re-read just before writing (other
    suites may have finished meanwhile, in other processes) and replace atomically."""
    try:
        results = json.loads(results_path.read_text())
    except (FileNotFoundError, ValueError):
        results = {}
    results[name] = entry
    tmp = results_path.with_name(f".{results_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=float) + "\n")
    os.replace(tmp, results_path)


def print_table(name: str, figures: dict) -> None:
    print(f"\n== {name}")
    for key, value in figures.items():
        if isinstance(value, float):
            print(f"  {key:58s} {value:12.4g}")
        elif isinstance(value, (int, str, bool)):
            print(f"  {key:58s} {value!s:>12}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
