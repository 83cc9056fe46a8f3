"""The collective exchange of parallel tempering over MPI (the policy stays MPI-free).

Replicas are partitioned in contiguous blocks (hpcopt.partition), so gathering
every rank's rows in rank order gives all replicas in id order: one
Iallgatherv of raw bytes per call, waited on quietly (a rank that finished
its replicas early sleeps instead of spinning while the others compute).
"""

from __future__ import annotations

import numpy as np

from ..partition import rank_range
from .runtime import World, wait_quietly


class MpiCollective:
    def __init__(self, world: World, n_replicas: int):
        self.world = world
        self.rows = [b - a for a, b in (rank_range(n_replicas, world.size, r)
                                        for r in range(world.size))]
        self.n_replicas = n_replicas

    def allgather(self, local: np.ndarray) -> np.ndarray:
        from mpi4py import MPI
        local = np.ascontiguousarray(local)
        if local.shape[0] != self.rows[self.world.rank]:
            raise ValueError(f"rank {self.world.rank} owns {self.rows[self.world.rank]} replicas, "
                             f"got {local.shape[0]} rows")
        if self.world.size == 1:
            return local.copy()
        row_bytes = local.dtype.itemsize * int(np.prod(local.shape[1:], dtype=np.int64))
        full = np.empty((self.n_replicas,) + local.shape[1:], dtype=local.dtype)
        counts = np.array(self.rows, dtype=np.int64) * row_bytes
        displs = np.concatenate(([0], np.cumsum(counts)[:-1]))
        send = local.view(np.uint8).reshape(-1) if local.size else np.zeros(0, np.uint8)
        recv = full.view(np.uint8).reshape(-1)
        request = self.world.comm.Iallgatherv(
            [send, MPI.BYTE], [recv, (counts.tolist(), displs.tolist()), MPI.BYTE])
        wait_quietly(request)
        return full
