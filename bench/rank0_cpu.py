"""Run `python -m hpcopt ARGS` and, on rank 0, write its own CPU seconds to FILE (JSON).

    mpiexec -n 3 python bench/rank0_cpu.py FILE hpo CONFIG ...
"""

import json
import os
import sys
import time

from hpcopt.cli import main

if __name__ == "__main__":
    out, args = sys.argv[1], sys.argv[2:]
    rc = main(args)
    rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    if rank == "0":
        with open(out, "w") as f:
            json.dump({"cpu_s": time.process_time()}, f)
    sys.exit(rc)
