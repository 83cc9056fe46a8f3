"""The messages of the task farm, over MPI or between threads of one process.

The farm's coordinator, sub-coordinators and workers talk only through a
:class:`Transport`: point-to-point messages with a tag (``send``, ``recv``,
``poll``), and the two collectives of static mode (``gather``,
``allreduce_max``).  Messages between one pair of ranks with one tag arrive in
the order they were sent (MPI's non-overtaking rule); a send never waits for
the receiver (``flush`` waits until every sent message has left).  Objects are
copied on the way (pickled, as mpi4py does), so a sender may reuse them.

:class:`MpiTransport` is the real one: non-blocking sends, receives that poll
with backoff sleeps (a waiting rank does not burn a core), collectives waited on
quietly.  :class:`ThreadedNetwork` simulates W ranks in one process, a thread
each, so the farm's protocol (retries, prefetch windows, STOP drains, reports,
timeouts, static rounds, sub-coordinators) is tested in-process in milliseconds.

Ranks are grouped into nodes (:meth:`Transport.node_groups`, a collective): the
ranks that share memory (MPI ``Split_type(COMM_TYPE_SHARED)``), or consecutive
blocks of ``HPCOPT_NODE_SIZE`` ranks when that variable is set (a test and
tuning knob: it lets one machine pretend to be several nodes).
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections import deque
from typing import Any, Callable, NamedTuple, Protocol, TypeVar

from .runtime import Backoff, node_communicator, wait_quietly

#: matches any source or any tag in recv/poll
ANY = -1
#: the environment variable that overrides the node grouping (see module docstring)
NODE_SIZE_ENV = "HPCOPT_NODE_SIZE"

T = TypeVar("T")


class Message(NamedTuple):
    obj: Any
    source: int
    tag: int


class TransportClosed(RuntimeError):
    """A threaded network was shut down (another simulated rank failed) or timed out."""


class Transport(Protocol):
    rank: int
    size: int

    def send(self, obj: Any, dest: int, tag: int) -> None:
        """Send a copy of `obj` to `dest` without waiting for it to be received."""

    def recv(self, source: int = ANY, tag: int = ANY, timeout: float | None = None
             ) -> Message | None:
        """The next matching message, waiting without spinning; None after `timeout` s."""

    def poll(self, source: int = ANY, tag: int = ANY) -> Message | None:
        """The next matching message if one has arrived, else None (never waits)."""

    def flush(self) -> None:
        """Wait until every message this rank sent has left (before leaving the farm)."""

    def gather(self, obj: Any, root: int = 0) -> list | None:
        """Every rank's `obj` in rank order on `root` (None elsewhere); collective."""

    def allreduce_max(self, value: int) -> int:
        """The largest `value` of all ranks, on every rank; collective."""

    def node_groups(self) -> list[list[int]]:
        """The ranks of each node, in rank order, nodes ordered by their first rank;
        collective (every rank calls it once, at the same point)."""


def node_size_override() -> int | None:
    """HPCOPT_NODE_SIZE as a positive int, or None when unset (ValueError if invalid)."""
    text = os.environ.get(NODE_SIZE_ENV, "").strip()
    if not text:
        return None
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1:
        raise ValueError(f"{NODE_SIZE_ENV} must be a positive integer, got {text!r}")
    return size


def blocks(world_size: int, node_size: int) -> list[list[int]]:
    """Consecutive blocks of `node_size` ranks (the last one may be shorter)."""
    return [list(range(a, min(a + node_size, world_size))) for a in range(0, world_size, node_size)]


def as_transport(world) -> "Transport":
    """A World becomes an MpiTransport over its communicator (a SoloTransport at size 1:
    no MPI needed); a Transport stays itself."""
    if hasattr(world, "send") and hasattr(world, "recv"):
        return world
    if world.size == 1:
        return SoloTransport()
    return MpiTransport(world.comm)


class SoloTransport:
    """World size 1: the collectives are the identity; there is no one to message."""

    rank, size = 0, 1

    def send(self, obj: Any, dest: int, tag: int) -> None:
        raise RuntimeError("a world of one rank has no one to send to")

    def recv(self, source: int = ANY, tag: int = ANY, timeout: float | None = None):
        raise RuntimeError("a world of one rank has no one to receive from")

    def poll(self, source: int = ANY, tag: int = ANY):
        return None

    def flush(self) -> None:
        pass

    def gather(self, obj: Any, root: int = 0) -> list:
        return [obj]

    def allreduce_max(self, value: int) -> int:
        return int(value)

    def node_groups(self) -> list[list[int]]:
        return [[0]]


# ---------------------------------------------------------------------------------------
# MPI

class MpiTransport:
    """A Transport over an mpi4py communicator (normally the World's COMM_WORLD)."""

    def __init__(self, comm):
        from mpi4py import MPI
        self._MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._status = MPI.Status()
        self._sending: deque = deque()   # requests of sends not known to be complete

    @classmethod
    def of_world(cls, world) -> "MpiTransport":
        return cls(world.comm)

    def _mpi_args(self, source: int, tag: int) -> tuple[int, int]:
        MPI = self._MPI
        return (MPI.ANY_SOURCE if source == ANY else source, MPI.ANY_TAG if tag == ANY else tag)

    def send(self, obj: Any, dest: int, tag: int) -> None:
        sending = self._sending
        while sending and sending[0].Test():     # sends complete in order, mostly
            sending.popleft()
        if len(sending) > 256:                   # ...but not always (one slow receiver)
            self._sending = sending = deque(r for r in sending if not r.Test())
        sending.append(self.comm.isend(obj, dest=dest, tag=tag))

    def poll(self, source: int = ANY, tag: int = ANY) -> Message | None:
        src, tg = self._mpi_args(source, tag)
        message = self.comm.improbe(source=src, tag=tg, status=self._status)
        if message is None:
            # probed again: after a sleep, MPICH's first probe only moves a message that has
            # arrived into its queue and reports nothing, so a quiet wait saw each message
            # one poll late (2-4 ms for an idle coordinator instead of 0-2; test_waits.py)
            message = self.comm.improbe(source=src, tag=tg, status=self._status)
        if message is None:
            return None
        return Message(message.recv(), self._status.Get_source(), self._status.Get_tag())

    def recv(self, source: int = ANY, tag: int = ANY, timeout: float | None = None
             ) -> Message | None:
        got = self.poll(source, tag)
        if got is not None:
            return got
        backoff = Backoff()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            backoff.sleep()
            got = self.poll(source, tag)
            if got is not None:
                return got
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def flush(self) -> None:
        for request in self._sending:
            wait_quietly(request)
        self._sending = deque()

    def gather(self, obj: Any, root: int = 0) -> list | None:
        if self.size == 1:
            return [obj]
        wait_quietly(self.comm.Ibarrier())
        return self.comm.gather(obj, root=root)

    def allreduce_max(self, value: int) -> int:
        if self.size == 1:
            return int(value)
        import numpy as np
        send = np.array([value], dtype=np.int64)
        recv = np.zeros(1, dtype=np.int64)
        wait_quietly(self.comm.Iallreduce(send, recv, op=self._MPI.MAX))
        return int(recv[0])

    def node_groups(self) -> list[list[int]]:
        override = node_size_override()
        if override is not None or self.size == 1:
            return blocks(self.size, override or 1)
        with node_communicator(self.comm) as node:
            first = node.allreduce(self.rank, op=self._MPI.MIN)   # the node's lowest rank
        wait_quietly(self.comm.Ibarrier())      # the allgather would spin for the slowest
        firsts = self.comm.allgather(first)
        groups: dict[int, list[int]] = {}
        for rank, f in enumerate(firsts):
            groups.setdefault(f, []).append(rank)
        return [groups[f] for f in sorted(groups)]


# ---------------------------------------------------------------------------------------
# threads

class ThreadedNetwork:
    """W simulated ranks in one process; ``transport(rank)`` is rank's end.

    Every blocking call gives up with TransportClosed once `timeout` seconds have
    passed since the network was made, or once :meth:`close` was called (a rank
    failed), so a protocol bug fails a test instead of hanging it.
    """

    def __init__(self, size: int, *, node_size: int | None = None, timeout: float = 60.0):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.node_size = node_size or size
        self.deadline = time.monotonic() + timeout
        self._cond = threading.Condition()
        self._boxes: list[list[tuple[int, int, bytes]]] = [[] for _ in range(size)]
        self._closed = False
        self._barrier = threading.Barrier(size)
        self._slots: list[Any] = [None] * size
        self.sent = [0] * size               # messages sent by each rank (for tests)

    def transport(self, rank: int) -> "ThreadedTransport":
        return ThreadedTransport(self, rank)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._barrier.abort()

    def _check(self) -> None:
        if self._closed:
            raise TransportClosed("the threaded network was closed (another rank failed)")
        if time.monotonic() > self.deadline:
            raise TransportClosed("the threaded network timed out (a rank waits forever?)")

    def _put(self, source: int, dest: int, tag: int, obj: Any) -> None:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        with self._cond:
            self._check()
            self._boxes[dest].append((source, tag, data))
            self.sent[source] += 1
            self._cond.notify_all()

    def _take(self, rank: int, source: int, tag: int, timeout: float | None) -> Message | None:
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                self._check()
                box = self._boxes[rank]
                for i, (src, tg, data) in enumerate(box):
                    if (source == ANY or src == source) and (tag == ANY or tg == tag):
                        del box[i]
                        return Message(pickle.loads(data), src, tg)
                if timeout == 0:
                    return None
                left = self.deadline - time.monotonic()
                if end is not None:
                    if time.monotonic() >= end:
                        return None
                    left = min(left, end - time.monotonic())
                self._cond.wait(max(left, 0.0) + 1e-3)

    def _collective(self, rank: int, value: Any) -> list:
        self._check()
        self._slots[rank] = value
        try:
            self._barrier.wait(timeout=max(self.deadline - time.monotonic(), 0.0))
            values = list(self._slots)
            self._barrier.wait(timeout=max(self.deadline - time.monotonic(), 0.0))
        except threading.BrokenBarrierError as exc:
            raise TransportClosed("a collective was abandoned (another rank failed)") from exc
        return values

    def run(self, fn: Callable[["ThreadedTransport"], T]) -> list[T]:
        """Run ``fn(transport)`` on every simulated rank; results by rank.

        The first real exception of any rank is re-raised here (the network is
        closed so that the other ranks stop waiting).
        """
        results: list = [None] * self.size
        errors: list[BaseException | None] = [None] * self.size

        def main(rank: int) -> None:
            try:
                results[rank] = fn(self.transport(rank))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                errors[rank] = exc
                self.close()

        threads = [threading.Thread(target=main, args=(r,), daemon=True, name=f"rank-{r}")
                   for r in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        real = [e for e in errors if e is not None and not isinstance(e, TransportClosed)]
        if real or any(e is not None for e in errors):
            raise (real or [e for e in errors if e is not None])[0]
        return results


class ThreadedTransport:
    """One simulated rank's end of a :class:`ThreadedNetwork`."""

    def __init__(self, network: ThreadedNetwork, rank: int):
        self.network, self.rank, self.size = network, rank, network.size

    def send(self, obj: Any, dest: int, tag: int) -> None:
        if not 0 <= dest < self.size:
            raise ValueError(f"rank {self.rank}: no rank {dest} in a network of {self.size}")
        self.network._put(self.rank, dest, tag, obj)

    def recv(self, source: int = ANY, tag: int = ANY, timeout: float | None = None
             ) -> Message | None:
        return self.network._take(self.rank, source, tag, timeout)

    def poll(self, source: int = ANY, tag: int = ANY) -> Message | None:
        return self.network._take(self.rank, source, tag, 0)

    def flush(self) -> None:
        self.network._check()

    def gather(self, obj: Any, root: int = 0) -> list | None:
        values = self.network._collective(self.rank, pickle.loads(pickle.dumps(obj)))
        return values if self.rank == root else None

    def allreduce_max(self, value: int) -> int:
        return max(int(v) for v in self.network._collective(self.rank, int(value)))

    def node_groups(self) -> list[list[int]]:
        return blocks(self.size, self.network.node_size)


def run_threaded(size: int, fn: Callable[[ThreadedTransport], T], *,
                 node_size: int | None = None, timeout: float = 60.0) -> list[T]:
    """``ThreadedNetwork(size, ...).run(fn)``: fn on `size` simulated ranks, results by rank."""
    return ThreadedNetwork(size, node_size=node_size, timeout=timeout).run(fn)

