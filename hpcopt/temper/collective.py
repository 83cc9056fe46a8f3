"""The one collective a tempering campaign needs, and in-process implementations.

The campaign only calls ``allgather(local) -> full``: `local` holds one row per
replica the calling rank owns (in increasing replica id), the result one row per
replica of the whole campaign, ordered by replica id.  Replicas are partitioned
in contiguous blocks, so this is an MPI Allgatherv of the local rows in rank
order.  Any dtype and row shape can occur (float64 energies, int8 lattices,
uint64 generator words); every rank calls it in the same order.

:class:`SequentialCollective` is world size 1.  :class:`ThreadedWorld` simulates
W ranks in one process (a thread per rank) so tests can check that results do
not depend on the partition.
"""

from __future__ import annotations

import threading
from typing import Callable, Protocol, Sequence, TypeVar

import numpy as np

from ..partition import rank_range

T = TypeVar("T")


class Collective(Protocol):
    def allgather(self, local: np.ndarray) -> np.ndarray:
        """Rows of all replicas (ordered by replica id) from each rank's owned rows."""


def replicas_of_rank(n_replicas: int, world_size: int, rank: int) -> range:
    """Contiguous block of replica ids of `rank` (even split, remainder to the first ranks)."""
    return range(*rank_range(n_replicas, world_size, rank))


class SequentialCollective:
    """World size 1: the only rank owns every replica."""

    def allgather(self, local: np.ndarray) -> np.ndarray:
        return np.array(local, copy=True)


class _ThreadCollective:
    def __init__(self, world: "ThreadedWorld", rank: int, owned: range):
        self.world, self.rank, self.owned = world, rank, owned

    def allgather(self, local: np.ndarray) -> np.ndarray:
        local = np.asarray(local)
        if local.shape[0] != len(self.owned):
            raise ValueError(f"rank {self.rank} owns {len(self.owned)} replicas, got "
                             f"{local.shape[0]} rows")
        w = self.world
        w._slots[self.rank] = local
        w._barrier.wait()
        full = np.concatenate(w._slots)
        w._barrier.wait()    # nobody overwrites a slot before everyone has read
        return full


class ThreadedWorld:
    """W simulated ranks in one process, one thread each, sharing an allgather."""

    def __init__(self, n_replicas: int, world_size: int, timeout: float = 300.0):
        self.n_replicas, self.world_size = n_replicas, world_size
        self._barrier = threading.Barrier(world_size, timeout=timeout)
        self._slots: list[np.ndarray | None] = [None] * world_size

    def run(self, fn: Callable[[int, Sequence[int], Collective], T]) -> list[T]:
        """Run ``fn(rank, owned replica ids, collective)`` on every rank; results by rank.

        The first exception of any rank is re-raised here (the others are released).
        """
        results: list = [None] * self.world_size
        errors: list[BaseException | None] = [None] * self.world_size

        def main(rank: int) -> None:
            owned = replicas_of_rank(self.n_replicas, self.world_size, rank)
            try:
                results[rank] = fn(rank, owned, _ThreadCollective(self, rank, owned))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                errors[rank] = exc
                self._barrier.abort()

        threads = [threading.Thread(target=main, args=(r,), daemon=True)
                   for r in range(self.world_size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        real = [e for e in errors if e is not None and not isinstance(e, threading.BrokenBarrierError)]
        if real or any(errors):
            raise (real or [e for e in errors if e is not None])[0]
        return results
