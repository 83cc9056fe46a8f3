"""The collectives a tempering campaign needs, and in-process implementations.

Replicas are partitioned in contiguous blocks (:func:`replicas_of_rank`), every
rank calls the same operations in the same order, and `local` always holds the
calling rank's rows in increasing replica id (any dtype and row shape: float64
energies, int8 lattices, packed checkpoint records):

* ``allgather(local) -> full``: every replica's row on every rank (the round's
  energies, from which every rank takes the same exchange decisions);
* ``to_root(local, replica_ids) -> Pending``, ``.wait() -> full | None``: the rows
  of some replicas (the T_min sample, a checkpoint) to rank 0 only, which writes
  them; None on the other ranks.  Non-blocking, so a round can post the sample
  before its allgather and pay for one collective, not two.

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


class Pending(Protocol):
    def wait(self) -> np.ndarray | None:
        """The gathered rows on rank 0 (ordered by replica id), None on other ranks."""


class Collective(Protocol):
    def allgather(self, local: np.ndarray) -> np.ndarray:
        """Rows of all replicas (ordered by replica id) from each rank's owned rows."""

    def to_root(self, local: np.ndarray, replica_ids: Sequence[int]) -> Pending:
        """Start sending the rows of `replica_ids` (sorted) to rank 0; `local` holds the
        calling rank's rows among them (possibly none: shape (0, ...), same dtype)."""


def replicas_of_rank(n_replicas: int, world_size: int, rank: int) -> range:
    """Contiguous block of replica ids of `rank`: an even split, the remainder to the last
    ranks (rank 0 also records rows, samples and checkpoints: it steps fewer replicas and
    writes while the others still step theirs)."""
    mirrored = world_size - 1 - rank
    a, b = rank_range(n_replicas, world_size, mirrored)
    return range(n_replicas - b, n_replicas - a)


def block_sizes(n_replicas: int, world_size: int) -> list[int]:
    """How many replicas each rank owns (replicas_of_rank)."""
    return [len(replicas_of_rank(n_replicas, world_size, r)) for r in range(world_size)]


def rows_per_rank(replica_ids: Sequence[int], n_replicas: int, world_size: int) -> list[int]:
    """How many of `replica_ids` each rank owns."""
    ids = np.asarray(replica_ids, dtype=np.int64)
    blocks = (replicas_of_rank(n_replicas, world_size, r) for r in range(world_size))
    return [int(np.count_nonzero((ids >= b.start) & (ids < b.stop))) for b in blocks]


class Done:
    """A Pending that has already finished (world size 1, in-process worlds)."""

    def __init__(self, value: np.ndarray | None):
        self.value = value

    def wait(self) -> np.ndarray | None:
        return self.value


class SequentialCollective:
    """World size 1: the only rank owns every replica and is rank 0."""

    def allgather(self, local: np.ndarray) -> np.ndarray:
        return np.array(local, copy=True)

    def to_root(self, local: np.ndarray, replica_ids: Sequence[int]) -> Done:
        return Done(np.array(local, copy=True))


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

    def to_root(self, local: np.ndarray, replica_ids: Sequence[int]) -> "_ThreadPending":
        mine = rows_per_rank(replica_ids, self.world.n_replicas, self.world.world_size)[self.rank]
        local = np.array(local, copy=True)
        if local.shape[0] != mine:
            raise ValueError(f"rank {self.rank} owns {mine} of replicas {list(replica_ids)}, got "
                             f"{local.shape[0]} rows")
        self.world._root_slots[self.rank] = local
        return _ThreadPending(self)


class _ThreadPending:
    def __init__(self, collective: _ThreadCollective):
        self.collective = collective

    def wait(self) -> np.ndarray | None:
        w, rank = self.collective.world, self.collective.rank
        w._barrier.wait()
        full = np.concatenate(w._root_slots) if rank == 0 else None
        w._barrier.wait()
        return full


class ThreadedWorld:
    """W simulated ranks in one process, one thread each, sharing the collectives."""

    def __init__(self, n_replicas: int, world_size: int, timeout: float = 300.0):
        self.n_replicas, self.world_size = n_replicas, world_size
        self._barrier = threading.Barrier(world_size, timeout=timeout)
        self._slots: list[np.ndarray | None] = [None] * world_size
        self._root_slots: list[np.ndarray | None] = [None] * world_size

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
