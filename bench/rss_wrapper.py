"""Run a Python module and record this process's peak RSS when it ends.

    mpiexec -n 3 python bench/rss_wrapper.py OUTDIR -m hpcopt sweep cfg.toml

runs ``python -m hpcopt sweep cfg.toml`` in this process (runpy) and writes
OUTDIR/rss.<rank>.json = {"rank", "maxrss_kb"} (getrusage(RUSAGE_SELF).ru_maxrss,
kB on Linux; the rank from PMI_RANK / OMPI_COMM_WORLD_RANK, 0 without a launcher).
The exit status of the module is kept.
"""

import json
import os
import resource
import runpy
import sys
from pathlib import Path


def _rank() -> int:
    for key in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"):
        if os.environ.get(key):
            return int(os.environ[key])
    return 0


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "-m":
        sys.exit("usage: rss_wrapper.py OUTDIR -m MODULE [ARGS ...]")
    out_dir, module = Path(sys.argv[1]), sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    finally:
        rank = _rank()
        out_dir.mkdir(parents=True, exist_ok=True)
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        (out_dir / f"rss.{rank}.json").write_text(json.dumps({"rank": rank, "maxrss_kb": maxrss}))
    sys.exit(code)


if __name__ == "__main__":
    main()
