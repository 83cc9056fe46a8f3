"""Run `python -m hpcopt ARGS` and, on rank 0, write its own CPU seconds to FILE (JSON).

    mpiexec -n 3 python bench/rank0_cpu.py FILE hpo CONFIG ...

Besides the total (``cpu_s``: start-up, the study's replay and the final summary included),
rank 0 samples (unix time, its CPU seconds) every SAMPLE_S into ``samples``, so that a
benchmark can take the CPU of a window of the run (the steady state between two finished
trials) by interpolation.
"""

import json
import os
import sys
import threading
import time

from hpcopt.cli import main

SAMPLE_S = 0.05


def _sample(samples: list, done: threading.Event) -> None:
    while not done.wait(SAMPLE_S):
        samples.append((time.time(), time.process_time()))


if __name__ == "__main__":
    out, args = sys.argv[1], sys.argv[2:]
    rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    samples: list = [(time.time(), time.process_time())]
    done = threading.Event()
    if rank == "0":
        threading.Thread(target=_sample, args=(samples, done), daemon=True).start()
    rc = main(args)
    done.set()
    if rank == "0":
        samples.append((time.time(), time.process_time()))
        with open(out, "w") as f:
            json.dump({"cpu_s": time.process_time(), "samples": samples}, f)
    sys.exit(rc)
