"""The SPMD runtime: the world, quiet waits, clean abort, stop signals.

Everything that touches MPI directly (besides the task farm's messages in
:mod:`hpcopt.mpi.transport`) lives here.  Three rules it enforces:

* a rank that waits does not burn a core another rank needs: waits poll a
  non-blocking request and sleep with exponential backoff (MPICH and Open MPI
  spin at 100 % inside blocking calls, which on an oversubscribed node slows the
  ranks that compute); the wait policy ([run] wait, set process-wide by
  configure_waits) lets them poll without sleeping first when every rank has a
  core of its own;
* an uncaught error on any rank prints one message (rank, host, exception,
  traceback) and aborts the whole job with exit status 1: never a hang;
* MPI_Init itself cannot hang either, and a launcher that starts N singletons is
  refused (:mod:`hpcopt.mpi.startup`);
* SIGTERM and SIGUSR1 (what SLURM sends before the time limit) only set a flag;
  campaigns poll it, checkpoint and stop cleanly.
"""

from __future__ import annotations

import atexit
import math
import os
import signal
import socket
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ..errors import EXIT_CTRL_C
from . import startup

#: backoff of every quiet wait (seconds): polls start fast, stay at BACKOFF_SHORT while a
#: partner is probably about to answer (the first BACKOFF_PATIENCE seconds), then settle
#: at BACKOFF_MAX for idle ranks.  Measured on 2 cores (bench temper_mpi): a 2 ms cap from
#: the start cost 6.8 ms per collective round, a 0.2 ms one 0.8 ms, at ~0.06 ms of CPU.
#: A sleep costs its rank about 23 us of CPU in this VM, so the patience is what a waiting rank
#: pays most for: 50 ms of it left ranks waiting 0.2 s a round at 3.4-4.8 % of a core,
#: 20 ms at 2.9-4.5 % (tests/mpi/test_waits.py), tempering rounds unchanged.
BACKOFF_MIN = 20e-6
BACKOFF_SHORT = 2e-4
BACKOFF_PATIENCE = 0.02
BACKOFF_MAX = 2e-3
#: seconds between printing a fatal error and MPI_Abort (see run_spmd)
ABORT_GRACE = 0.5


# -- the wait policy ([run] wait) ------------------------------------------------------
#: "quiet": sleep between polls (backoff above); "spin": poll without sleeping, as
#: blocking MPI calls do; "auto": spin for AUTO_SPIN_SECONDS, then quietly, when every
#: rank has a core of its own, else quiet (a spinning rank on a shared core takes CPU from
#: the ranks that compute: bench temper_mpi, 3 ranks on 2 cores, 11-14 ms of overhead per
#: cheap tempering round with spinning waits against 1.7-2.5 ms with quiet ones).
WAIT_POLICIES = ("auto", "quiet", "spin")
AUTO_SPIN_SECONDS = 1e-3


@dataclass(frozen=True)
class WaitMode:
    """How this process waits: every wait polls without sleeping for `spin_seconds`."""

    policy: str               # as configured: auto | quiet | spin
    spin_seconds: float       # 0: quiet from the start; inf: never sleeps
    reason: str               # why (for logs)

    @property
    def quiet(self) -> bool:
        """True when waits sleep from the start (ranks share cores, or asked for)."""
        return self.spin_seconds == 0.0


_WAIT_MODE = WaitMode("quiet", 0.0, "the default before a campaign sets its policy")


def wait_mode() -> WaitMode:
    return _WAIT_MODE


def set_wait_mode(policy: str, cores_per_rank: float | None = None) -> WaitMode:
    """Set the process-wide wait mode from a policy; `cores_per_rank` decides "auto"."""
    global _WAIT_MODE
    if policy not in WAIT_POLICIES:
        raise ValueError(f"wait policy must be one of {', '.join(WAIT_POLICIES)}, got {policy!r}")
    if policy == "spin":
        mode = WaitMode(policy, math.inf, "asked for")
    elif policy == "quiet":
        mode = WaitMode(policy, 0.0, "asked for")
    elif cores_per_rank is not None and cores_per_rank >= 1:
        mode = WaitMode(policy, AUTO_SPIN_SECONDS, f"{cores_per_rank:.3g} cores per rank")
    else:
        why = "cores per rank unknown" if cores_per_rank is None else \
            f"{cores_per_rank:.3g} cores per rank: ranks share cores"
        mode = WaitMode(policy, 0.0, why)
    _WAIT_MODE = mode
    return mode


def cores_per_rank(node_cpu_sets: list[set[int]], env: dict | None = None) -> float:
    """CPUs of a node over its ranks: the union of the ranks' affinity sets (what the
    launcher or SLURM bound them to) per rank, at most SLURM_CPUS_PER_TASK when set."""
    env = os.environ if env is None else env
    cpus = len(set().union(*node_cpu_sets)) / max(len(node_cpu_sets), 1)
    per_task = env.get("SLURM_CPUS_PER_TASK", "")
    if per_task.isdigit() and int(per_task) > 0:
        cpus = min(cpus, float(per_task))
    return cpus


def configure_waits(world: "World", policy: str) -> WaitMode:
    """Every rank: resolve `policy` for this node and set it process-wide (collective)."""
    if policy != "auto":
        return set_wait_mode(policy)
    mine = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        set(range(os.cpu_count() or 1))
    if world.size == 1:
        return set_wait_mode(policy, cores_per_rank([mine]))
    with world.node() as node:
        sets = node.allgather(mine)
    return set_wait_mode(policy, cores_per_rank(sets))


class Backoff:
    """Poll intervals of one wait: none while the wait mode spins, then the backoff above."""

    def __init__(self):
        self.delay = BACKOFF_MIN
        self.start = time.monotonic()
        self.spin_until = self.start + _WAIT_MODE.spin_seconds

    def sleep(self) -> None:
        if self.spin_until > self.start:       # a spinning mode: poll again at once
            if time.monotonic() < self.spin_until:
                return
            self.spin_until = self.start       # spun long enough: quiet from here on
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
        with self.node() as node:
            result = fn() if node.Get_rank() == 0 else None
            wait_quietly(node.Ibarrier())
            if node.Get_rank() != 0:
                result = fn()
            return result

    @contextmanager
    def node(self) -> Iterator[Any]:
        """The communicator of this node's ranks (see node_communicator), freed on exit."""
        with node_communicator(self.comm) as node:
            yield node


@contextmanager
def node_communicator(comm) -> Iterator[Any]:
    """The communicator of the ranks of `comm` on this node (MPI_Comm_split_type, shared
    memory), freed on exit.  A quiet barrier comes first: Split_type spins while it waits,
    and ranks reach it at different times (some may still be importing a campaign's
    modules: rank 0 spun 1.4 s of a 1.5 s wait, test_waits.py)."""
    MPI = _mpi()
    wait_quietly(comm.Ibarrier())
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        yield node
    finally:
        node.Free()


def wait_quietly(request) -> Any:
    """Poll `request.test()` as the wait mode says (see Backoff); return the received object."""
    backoff = Backoff()
    while True:
        done, msg = request.test()
        if not done:     # tested again at once: a non-blocking collective moves one stage
            done, msg = request.test()   # per test (bench temper_mpi: a bare quiet
                                         # Iallgather of 3 ranks 0.84 -> 0.27 ms a round)
        if done:
            return msg
        backoff.sleep()


def wait_all(requests: list) -> None:
    """Wait for every request of a list (buffer sends and receives), polling as above."""
    if not requests:
        return
    MPI = _mpi()
    backoff = Backoff()
    while not (MPI.Request.Testall(requests) or MPI.Request.Testall(requests)):
        backoff.sleep()                  # tested twice, as in wait_quietly


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
#: SIGTERM/SIGUSR1 (SLURM before the time limit, scancel) and SIGINT (Ctrl-C; MPICH's
#: mpiexec forwards it to every rank) only set a flag: campaigns poll it, checkpoint and
#: stop cleanly.  A second Ctrl-C ends the process at once (exit EXIT_CTRL_C, rows written
#: so far are kept, as after a kill); under mpiexec its own second Ctrl-C does the same.
_STOP: dict[str, Any] = {"signal": None, "reason": None}
#: os._exit as it was at import: the task farm wraps os._exit while objectives run (to
#: catch one that exits), and the runtime's own immediate exits must not be mistaken for it
_exit_now = os._exit
_AT_EXIT = {"installed": False}
#: the handlers install_stop_handlers replaced, which uninstall_stop_handlers puts back
_PREVIOUS_HANDLERS: dict[int, Any] = {}
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
_SECOND_CTRL_C = (b"hpcopt: second Ctrl-C: stopping at once, without a checkpoint (rows "
                  b"already written are kept; --resume continues)\n")


def _on_stop_signal(signum, frame) -> None:
    if signum == signal.SIGINT and _STOP["signal"] == signal.SIGINT:
        os.write(2, _SECOND_CTRL_C)
        _exit_now(EXIT_CTRL_C)
    if _STOP["signal"] is None:          # the first signal names the stop
        _STOP["signal"] = signum


def install_stop_handlers() -> None:
    """Stop signals set a flag instead of killing the process (checkpoint, then exit).

    Called as early as possible (the first line of the command line, before it imports
    the campaign kinds), so that a signal during start-up already stops the campaign
    cleanly.  At interpreter exit the signals are ignored: Python resets its handlers to
    the default action before mpi4py's MPI_Finalize runs, and a signal in that window
    would kill a process whose result file already says "complete" (and turn its exit
    status 0 into 128 + the signal).
    """
    for sig in STOP_SIGNALS:
        previous = signal.signal(sig, _on_stop_signal)
        if previous is not _on_stop_signal:
            _PREVIOUS_HANDLERS[sig] = previous
    if not _AT_EXIT["installed"]:
        atexit.register(_ignore_stop_signals)
        _AT_EXIT["installed"] = True


def uninstall_stop_handlers() -> None:
    """Back to the handlers from before install_stop_handlers (commands that are not
    campaigns: report, info, a relaunch under mpiexec).  A stop signal that arrived
    meanwhile is delivered again, so that it acts as if it arrived now: Ctrl-C raises
    KeyboardInterrupt, SIGTERM kills the process."""
    pending = _STOP["signal"]
    for sig in STOP_SIGNALS:
        previous = _PREVIOUS_HANDLERS.pop(sig, signal.SIG_DFL)
        signal.signal(sig, signal.SIG_DFL if previous is None else previous)
    reset_stop()
    if pending is not None:
        os.kill(os.getpid(), pending)


def _ignore_stop_signals() -> None:
    """The campaign is over (file closed, exit status decided): nothing left to stop."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def request_stop(reason: str) -> bool:
    """Stop the campaign as a stop signal would, for `reason` (e.g. a full file system);
    True when this is the first stop request."""
    if stop_requested():
        return False
    _STOP["reason"] = reason
    return True


def stop_requested() -> bool:
    return _STOP["signal"] is not None or _STOP["reason"] is not None


def stop_signal() -> int | None:
    """The stop signal received (or requested by another rank), None if none."""
    return _STOP["signal"]


def request_stop_signal(signum: int) -> None:
    """Stop as if `signum` had arrived here: another rank received it (the task farm
    forwards a worker's stop signal to the coordinator, which stops every rank)."""
    if _STOP["signal"] is None:
        _STOP["signal"] = int(signum)


def stop_signal_name() -> str | None:
    sig = _STOP["signal"]
    return signal.Signals(sig).name if sig is not None else None


def stop_reason() -> str | None:
    """Why the campaign was asked to stop: 'Ctrl-C (SIGINT)', 'SIGTERM', a request's reason."""
    name = stop_signal_name()
    if name == "SIGINT":
        return "Ctrl-C (SIGINT)"
    return name or _STOP["reason"]


def reset_stop() -> None:
    _STOP["signal"] = None
    _STOP["reason"] = None


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
        _exit_now(1)
