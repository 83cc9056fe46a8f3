"""The SPMD runtime: the world, quiet waits, clean abort, stop signals.

Everything that touches MPI directly (besides the farm protocol in
:mod:`hpcopt.farm`) lives here.  Three rules it enforces:

* a rank that waits does not burn a core: waits poll a non-blocking request
  and sleep with exponential backoff (MPICH and Open MPI spin at 100 % inside
  blocking calls, which on an oversubscribed node slows the ranks that compute);
* an uncaught error on any rank prints one message (rank, host, exception,
  traceback) and aborts the whole job with exit status 1: never a hang;
* MPI_Init itself cannot hang either, and a launcher that starts N singletons is
  refused (:mod:`hpcopt.mpi.startup`);
* SIGTERM and SIGUSR1 (what SLURM sends before the time limit) only set a flag;
  campaigns poll it, checkpoint and stop cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from . import startup

#: backoff of every quiet wait (seconds): polls start fast, stay at BACKOFF_SHORT while a
#: partner is probably about to answer (the first BACKOFF_PATIENCE seconds), then settle
#: at BACKOFF_MAX for idle ranks.  Measured on 2 cores (bench temper_mpi): a 2 ms cap from
#: the start cost 6.8 ms per collective round, a 0.2 ms one 0.8 ms, at ~0.06 ms of CPU.
BACKOFF_MIN = 20e-6
BACKOFF_SHORT = 2e-4
BACKOFF_PATIENCE = 0.05
BACKOFF_MAX = 2e-3
#: seconds between printing a fatal error and MPI_Abort (see run_spmd)
ABORT_GRACE = 0.5


class Backoff:
    """Sleep lengths of one wait (see the constants above)."""

    def __init__(self):
        self.delay = BACKOFF_MIN
        self.start = time.monotonic()

    def sleep(self) -> None:
        time.sleep(self.delay)
        cap = BACKOFF_SHORT if time.monotonic() - self.start < BACKOFF_PATIENCE else BACKOFF_MAX
        self.delay = min(self.delay * 2, cap)


def _mpi():
    """mpi4py.MPI, initialised (lazily: report/analysis code never needs MPI; see
    hpcopt.mpi.startup for how MPI_Init is guarded)."""
    return startup.initialised_mpi()


@dataclass
class World:
    """MPI_COMM_WORLD with rank, size and host name at hand."""

    comm: Any
    rank: int
    size: int
    host: str

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    # -- quiet (non-spinning) collectives and waits --------------------------------
    def wait(self, request) -> Any:
        """Wait for a non-blocking request, sleeping with backoff; return its message."""
        return wait_quietly(request)

    def barrier(self) -> None:
        wait_quietly(self.comm.Ibarrier())

    def bcast(self, obj: Any, root: int = 0) -> Any:
        """Broadcast a Python object; the other ranks wait without spinning first."""
        if self.size == 1:
            return obj
        self.barrier()
        return self.comm.bcast(obj, root=root)

    def gather(self, obj: Any, root: int = 0) -> list | None:
        if self.size == 1:
            return [obj]
        self.barrier()
        return self.comm.gather(obj, root=root)

    def any_flag(self, flag: bool) -> bool:
        """True on every rank if `flag` is True on any rank (a quiet Allreduce)."""
        if self.size == 1:
            return bool(flag)
        import numpy as np
        MPI = _mpi()
        send = np.array([1 if flag else 0], dtype=np.int32)
        recv = np.zeros(1, dtype=np.int32)
        wait_quietly(self.comm.Iallreduce(send, recv, op=MPI.MAX))
        return bool(recv[0])

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)

    def node_first(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on one rank per node, then on that node's other ranks.

        For numba's on-disk cache: the first rank compiles and writes the cache,
        the others then load it instead of all compiling at once.
        """
        if self.size == 1:
            return fn()
        MPI = _mpi()
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        try:
            result = fn() if node.Get_rank() == 0 else None
            wait_quietly(node.Ibarrier())
            if node.Get_rank() != 0:
                result = fn()
            return result
        finally:
            node.Free()


def wait_quietly(request) -> Any:
    """Poll `request.test()` with backoff sleeps; return the received object."""
    backoff = Backoff()
    while True:
        done, msg = request.test()
        if done:
            return msg
        backoff.sleep()


_WORLD: World | None = None


def get_world(check_launcher: bool = True) -> World:
    """Initialise MPI (singleton mode without a launcher) and return the world.

    A launcher that started N processes which each see a world of 1 ends the process
    with one message and exit status 1 (unless `check_launcher` is False: hpcopt info).
    """
    global _WORLD
    if _WORLD is None:
        MPI = _mpi()
        comm = MPI.COMM_WORLD
        world = World(comm=comm, rank=comm.Get_rank(), size=comm.Get_size(),
                      host=socket.gethostname())
        if check_launcher:
            startup.refuse_mismatched_launcher(world.size)
        _WORLD = world
    return _WORLD


# -- stop signals -------------------------------------------------------------------
_STOP = {"signal": None}
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def install_stop_handlers() -> None:
    """SIGTERM/SIGUSR1 set a flag instead of killing the rank (checkpoint, then exit)."""
    def handler(signum, frame):
        _STOP["signal"] = signum
    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


def stop_requested() -> bool:
    return _STOP["signal"] is not None


def stop_signal_name() -> str | None:
    sig = _STOP["signal"]
    return signal.Signals(sig).name if sig is not None else None


def reset_stop() -> None:
    _STOP["signal"] = None


# -- errors end the whole job --------------------------------------------------------
def format_error(world_rank: int, host: str, exc: BaseException) -> str:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return (f"hpcopt: error on rank {world_rank} ({host}): {type(exc).__name__}: {exc}\n"
            f"{tb.rstrip()}\n")


def run_spmd(main: Callable[[World], int]) -> int:
    """Run `main(world)` on every rank; any uncaught exception aborts the whole job.

    `main` returns the exit status.  Errors that every rank agreed on (a bad config
    is validated on rank 0 and broadcast) are returned as status 2 by `main`
    itself; an exception escaping here is unexpected, so the rank prints one
    message and calls MPI_Abort, which ends every rank (exit status 1).
    """
    world = get_world()
    try:
        return main(world)
    except BaseException as exc:  # noqa: BLE001 - the last line of defence
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            raise
        sys.stderr.write(format_error(world.rank, world.host, exc))
        sys.stderr.flush()
        sys.stdout.flush()
        if world.size > 1:
            # give the launcher a moment to forward the message: some (Debian's MPICH
            # 4.0 hydra) kill every process at MPI_Abort before draining their pipes
            time.sleep(ABORT_GRACE)
            world.abort(1)
        os._exit(1)


def recv_quietly(comm, source: int, tag: int, *, timeout: float | None = None):
    """Receive (obj, source, tag) of the next matching message, sleeping with backoff.

    Returns None when `timeout` seconds pass without a message (so a caller can
    look at its clock, stop flags or deadlines between polls).
    """
    MPI = _mpi()
    status = MPI.Status()
    backoff = Backoff()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        message = comm.improbe(source=source, tag=tag, status=status)
        if message is not None:
            return message.recv(), status.Get_source(), status.Get_tag()
        if deadline is not None and time.monotonic() >= deadline:
            return None
        backoff.sleep()


def poll(comm, source: int, tag: int):
    """(obj, source, tag) of a message that has already arrived, else None (never waits)."""
    MPI = _mpi()
    status = MPI.Status()
    message = comm.improbe(source=source, tag=tag, status=status)
    if message is None:
        return None
    return message.recv(), status.Get_source(), status.Get_tag()


def send_quietly(comm, obj: Any, dest: int, tag: int) -> None:
    """Send without spinning if the receiver is not ready (large messages are not eager)."""
    wait_quietly(comm.isend(obj, dest=dest, tag=tag))


def any_source() -> int:
    return _mpi().ANY_SOURCE


def any_tag() -> int:
    return _mpi().ANY_TAG
