"""The collectives of parallel tempering over MPI (the policy stays MPI-free).

Replicas are partitioned in contiguous blocks (hpcopt.partition), so gathering
every rank's rows in rank order gives all replicas in id order.  Rows travel as
raw bytes on a communicator of their own (no tag can meet another protocol's).
Every wait follows the process-wide wait mode (hpcopt.mpi.runtime).

How `allgather` moves the bytes depends on that mode.  A quiet wait sleeps
between polls, so each dependent stage of a collective algorithm costs about
one poll period: MPICH's Iallgatherv on 3 ranks sharing 2 cores took 0.82 ms
per bare round, a one-stage exchange (every rank sends its block straight to
every other and waits for all of them) 0.17 ms.  So with quiet waits and up to
DIRECT_MAX ranks the exchange is direct; otherwise (ranks with a core of their
own, which poll without sleeping, or many ranks) MPI's Iallgatherv is used.
`to_root` is a direct send of the owners' rows to rank 0 in either mode.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..temper.collective import Done, block_sizes, rows_per_rank
from .runtime import World, wait_all, wait_mode, wait_quietly

#: quiet waits: the direct exchange costs 2 (W - 1) requests per rank and round
DIRECT_MAX = 64
_ALLGATHER, _TO_ROOT = 1, 2     # tags on the collective's own communicator


def _bytes(a: np.ndarray) -> np.ndarray:
    """A flat uint8 view of a C-contiguous array (empty arrays included)."""
    return a.reshape(-1).view(np.uint8) if a.size else np.zeros(0, np.uint8)


class _Requests:
    """Pending point-to-point requests and the buffer rank 0 receives into."""

    def __init__(self, requests: list, result: np.ndarray | None, keep: list):
        self.requests, self.result, self.keep = requests, result, keep

    def wait(self) -> np.ndarray | None:
        wait_all(self.requests)
        self.keep.clear()           # send buffers may go once the sends are done
        return self.result


class MpiCollective:
    """allgather / to_root of hpcopt.temper.collective.Collective, over MPI_COMM_WORLD."""

    def __init__(self, world: World, n_replicas: int):
        self.world = world
        self.n_replicas = n_replicas
        self.rows = block_sizes(n_replicas, world.size)
        self.comm = None
        if world.size > 1:
            world.barrier()                 # quietly: MPI_Comm_dup spins while it waits
            self.comm = world.comm.Dup()

    def close(self) -> None:
        if self.comm is not None:
            self.comm.Free()
            self.comm = None

    def _check(self, local: np.ndarray, expected: int, what: str) -> np.ndarray:
        local = np.ascontiguousarray(local)
        if local.shape[0] != expected:
            raise ValueError(f"rank {self.world.rank} owns {expected} {what}, got "
                             f"{local.shape[0]} rows")
        return local

    def allgather(self, local: np.ndarray) -> np.ndarray:
        local = self._check(local, self.rows[self.world.rank], "replicas")
        if self.world.size == 1:
            return local.copy()
        from mpi4py import MPI
        row_bytes = local.dtype.itemsize * int(np.prod(local.shape[1:], dtype=np.int64))
        full = np.empty((self.n_replicas,) + local.shape[1:], dtype=local.dtype)
        counts = [n * row_bytes for n in self.rows]
        displs = np.concatenate(([0], np.cumsum(counts)[:-1])).tolist()
        send, recv = _bytes(local), _bytes(full)
        if wait_mode().quiet and self.world.size <= DIRECT_MAX:
            me = self.world.rank
            recv[displs[me]:displs[me] + counts[me]] = send
            requests = [self.comm.Irecv([recv[displs[r]:displs[r] + counts[r]], MPI.BYTE],
                                        source=r, tag=_ALLGATHER)
                        for r in range(self.world.size) if r != me and counts[r]]
            requests += [self.comm.Isend([send, MPI.BYTE], dest=r, tag=_ALLGATHER)
                         for r in range(self.world.size) if r != me and counts[me]]
            wait_all(requests)
        else:
            wait_quietly(self.comm.Iallgatherv([send, MPI.BYTE], [recv, (counts, displs), MPI.BYTE]))
        return full

    def to_root(self, local: np.ndarray, replica_ids: Sequence[int]):
        rows = rows_per_rank(replica_ids, self.n_replicas, self.world.size)
        local = self._check(local, rows[self.world.rank], f"of replicas {list(replica_ids)}")
        if self.world.size == 1:
            return Done(local.copy())
        from mpi4py import MPI
        row_bytes = local.dtype.itemsize * int(np.prod(local.shape[1:], dtype=np.int64))
        if self.world.rank != 0:
            if not rows[self.world.rank]:
                return Done(None)
            data = _bytes(local.copy())
            return _Requests([self.comm.Isend([data, MPI.BYTE], dest=0, tag=_TO_ROOT)], None,
                             [data])
        full = np.empty((sum(rows),) + local.shape[1:], dtype=local.dtype)
        recv = _bytes(full)
        requests, offset = [], 0
        for r, n in enumerate(rows):
            size = n * row_bytes
            if r == 0:
                recv[:size] = _bytes(local)
            elif n:
                requests.append(self.comm.Irecv([recv[offset:offset + size], MPI.BYTE],
                                                source=r, tag=_TO_ROOT))
            offset += size
        return _Requests(requests, full, [])
