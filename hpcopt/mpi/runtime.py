"""The SPMD runtime: the world, quiet waits, clean abort, stop signals.

Everything that touches MPI directly (besides the farm protocol in
:mod:`hpcopt.farm`) lives here.  Three rules it enforces:

* a rank that waits does not burn a core: waits poll a non-blocking request
  and sleep with exponential backoff (MPICH and Open MPI spin at 100 % inside
  blocking calls, which on an oversubscribed node slows the ranks that compute);
* an uncaught error on any rank prints one message (rank, host, exception,
  traceback) and aborts the whole job with exit status 1: never a hang;
* MPI_Init itself cannot hang either: a rank still inside it after
  ``HPCOPT_MPI_INIT_TIMEOUT`` seconds (its peers died while starting) says so and
  exits 1, and a launcher whose MPI is not mpi4py's (N singletons) is refused;
* SIGTERM and SIGUSR1 (what SLURM sends before the time limit) only set a flag;
  campaigns poll it, checkpoint and stop cleanly.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import UsageError

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
#: seconds a rank may spend in MPI_Init (env HPCOPT_MPI_INIT_TIMEOUT; 0: no limit). A rank
#: whose peers died while starting waits inside MPI_Init for ever unless the launcher ends
#: it (plain `srun` does not: SLURM's KillOnBadExit defaults to 0). Big jobs take seconds.
MPI_INIT_TIMEOUT = 300.0
#: (variable, what sets it): the number of processes the launcher started
LAUNCHER_SIZE_VARS = (("PMI_SIZE", "MPICH/Intel hydra or srun --mpi=pmi2"),
                      ("OMPI_COMM_WORLD_SIZE", "Open MPI mpirun"),
                      ("SLURM_STEP_NUM_TASKS", "srun"))


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
    """mpi4py.MPI, initialised (imported lazily: report/analysis code never needs MPI)."""
    MPI = sys.modules.get("mpi4py.MPI")
    if MPI is None or not MPI.Is_initialized():
        MPI = _initialise_mpi()
    return MPI


def _initialise_mpi():
    """Import mpi4py.MPI and call MPI_Init_thread(MULTIPLE), as mpi4py would, but through
    ctypes: a ctypes call releases the GIL, so a watchdog thread can end a rank that is
    stuck inside MPI_Init (mpi4py's own MPI_Init holds the GIL). mpi4py still finalizes."""
    import mpi4py
    if "mpi4py.MPI" not in sys.modules:
        mpi4py.rc.initialize = False
        mpi4py.rc.finalize = True
    from mpi4py import MPI
    if MPI.Is_initialized():
        return MPI
    netmod = pmi1_safe_netmod(os.environ, _library_version(MPI))
    if netmod:
        os.environ["MPICH_CH4_NETMOD"] = netmod
    timeout = _init_timeout()
    finished = threading.Event()
    if timeout > 0:
        threading.Thread(target=_give_up_on_init, args=(finished, timeout, MPI), daemon=True,
                         name="hpcopt-mpi-init-watchdog").start()
    init = ctypes.CDLL(MPI.__file__).MPI_Init_thread    # resolved in the libmpi mpi4py loaded
    init.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                     ctypes.POINTER(ctypes.c_int)]
    provided = ctypes.c_int(0)
    status = init(None, None, int(MPI.THREAD_MULTIPLE), ctypes.byref(provided))
    finished.set()
    if status != 0:         # MPICH and Open MPI abort by themselves; a library might not
        raise RuntimeError(f"MPI_Init_thread failed with error code {status}")
    return MPI


def _init_timeout() -> float:
    text = os.environ.get("HPCOPT_MPI_INIT_TIMEOUT", "").strip()
    if not text:
        return MPI_INIT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise UsageError(f"HPCOPT_MPI_INIT_TIMEOUT: expected seconds (0: no limit), got {text!r}")
    return value


def launcher_rank() -> str:
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"):
        if os.environ.get(var):
            return os.environ[var]
    return "?"


def _give_up_on_init(finished: threading.Event, timeout: float, MPI) -> None:
    if finished.wait(timeout):
        return
    os.write(2, (f"hpcopt: error on launcher rank {launcher_rank()} ({socket.gethostname()}): "
                 f"MPI_Init did not finish within {timeout:g} s; another rank of this job "
                 f"probably failed to start (see its message above), or the launcher cannot "
                 f"start this MPI ({_library(MPI)}). Exiting (limit: "
                 f"HPCOPT_MPI_INIT_TIMEOUT).\n").encode())
    os._exit(1)


def _library_version(MPI) -> str:
    try:
        return MPI.Get_library_version()        # callable before MPI_Init
    except Exception:  # noqa: BLE001 - only for messages and the netmod choice
        return ""


def _library(MPI) -> str:
    """The MPI library's name and version, one line ("MPICH Version: 5.0.2")."""
    lines = _library_version(MPI).strip().splitlines()
    return " ".join(lines[0].split()) if lines else "unknown MPI library"


def pmi1_safe_netmod(env, library_version: str) -> str | None:
    """"ofi" when MPICH must not use its UCX netmod to start this process, else None.

    SLURM's pmi2 plugin also serves PMI-1 clients (the MPICH wheel speaks only PMI-1),
    reading each request with one read() of at most 1024 bytes. On two or more nodes
    MPICH's UCX netmod sends the node leaders' 4 KiB addresses as PMI-1 lines of up to
    about 1080 bytes: when one is longer than 1024 the plugin cuts it and MPI_Init fails
    (UCX "failed to unpack address") or hangs. OFI addresses fit in a 70-byte line. Only
    for an MPICH built with both netmods, under SLURM's PMI (not hydra's), on several
    nodes, and when MPICH_CH4_NETMOD is not set by the user.
    """
    device = re.search(r"^MPICH Device:\s*(.*)$", library_version, re.M)
    both = device is not None and {"ucx", "ofi"} <= set(re.split(r"[\s:,]+", device.group(1)))
    slurm_pmi = bool(env.get("PMI_JOBID")) and not env.get("MPI_LOCALNRANKS")
    nodes = env.get("SLURM_STEP_NUM_NODES", "")
    if both and slurm_pmi and nodes.isdigit() and int(nodes) > 1 \
            and "MPICH_CH4_NETMOD" not in env:
        return "ofi"
    return None


def launcher_mismatch(world_size: int, env: dict | None = None) -> str | None:
    """Why the launcher and mpi4py's MPI library do not match (every process a world of
    one, each running the whole campaign into the same files), or None."""
    env = os.environ if env is None else env
    for var, launcher in LAUNCHER_SIZE_VARS:
        text = env.get(var, "")
        if text.isdigit() and int(text) > 1 and world_size == 1:
            return (f"the launcher ({launcher}) started {text} processes ({var}={text}) but "
                    f"each sees an MPI world of 1: the launcher cannot start mpi4py's MPI "
                    f"({_library(_mpi())}) as one job (srun needs --mpi=pmi2 for MPICH; an "
                    f"mpirun must come from the same MPI as mpi4py's library; see 'Which "
                    f"launcher' in docs/submit.md)")
    return None


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
    with one message (from the launcher's rank 0) and exit status 1.
    """
    global _WORLD
    if _WORLD is None:
        MPI = _mpi()
        comm = MPI.COMM_WORLD
        world = World(comm=comm, rank=comm.Get_rank(), size=comm.Get_size(),
                      host=socket.gethostname())
        problem = launcher_mismatch(world.size) if check_launcher else None
        if problem:
            if launcher_rank() in ("0", "?"):
                sys.stderr.write(f"hpcopt: error: {problem}\n")
                sys.stderr.flush()
            sys.exit(1)
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
