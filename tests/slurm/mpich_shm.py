"""The name of the shared-memory segment MPICH 5 gives a job step on one node.

MPICH (CH4, POSIX shared memory; the PyPI wheel) calls it
``/dev/shm/mpich_shm_<FNV-1a of the PMI KVS name, hex>_<node index within the step>``;
under SLURM the KVS name is "JOBID.STEPID". Used by the test clusters to clean up after
their killed steps and by mpich_shm_collision.sh. ``python mpich_shm.py 12.0 [NODE]``
prints the path.
"""

from __future__ import annotations

import sys
from pathlib import Path


def mpich_slab(step: str, node: int = 0) -> Path:
    """The segment of job step `step` ("J.S") on the `node`-th node of that step."""
    h = 2166136261
    for b in step.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return Path(f"/dev/shm/mpich_shm_{h:x}_{node}")


if __name__ == "__main__":
    print(mpich_slab(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
