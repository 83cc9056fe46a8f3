"""MPI start-up: MPI_Init that cannot hang, and launchers that do not fit mpi4py's MPI.

* MPI_Init through ctypes (the GIL released) with a watchdog thread: a rank still inside
  MPI_Init after HPCOPT_MPI_INIT_TIMEOUT seconds (a peer of the job died while starting,
  and the launcher does not end the job) prints one line and exits 1;
* a launcher that started N processes that each see a world of 1 (srun without the
  PMI type of the MPI, another MPI's mpirun) is refused before any work;
* MPICH's UCX netmod is not used to start a job on several nodes under SLURM's PMI-1
  server, which cuts its long messages (see :func:`pmi1_safe_netmod`).
"""

from __future__ import annotations

import ctypes
import os
import re
import socket
import sys
import threading

from ..errors import UsageError

#: seconds a rank may spend in MPI_Init (env HPCOPT_MPI_INIT_TIMEOUT; 0: no limit). A rank
#: whose peers died while starting waits inside MPI_Init for ever unless the launcher ends
#: it (plain `srun` does not: SLURM's KillOnBadExit defaults to 0). Big jobs take seconds.
MPI_INIT_TIMEOUT = 300.0
#: (variable, what sets it): the number of processes the launcher started
LAUNCHER_SIZE_VARS = (("PMI_SIZE", "MPICH/Intel hydra or srun --mpi=pmi2"),
                      ("OMPI_COMM_WORLD_SIZE", "Open MPI mpirun"),
                      ("SLURM_STEP_NUM_TASKS", "srun"))

_MPI = None                     # mpi4py.MPI once initialised


def initialised_mpi():
    """mpi4py.MPI with MPI initialised (first call: see _initialise_mpi)."""
    global _MPI
    if _MPI is None:
        _MPI = _initialise_mpi()
    return _MPI


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
    try:
        init = ctypes.CDLL(MPI.__file__).MPI_Init_thread    # in the libmpi mpi4py loaded
    except (OSError, AttributeError):       # not reachable from mpi4py's extension module:
        MPI.Init_thread()                   # mpi4py's own MPI_Init, without the watchdog
        return MPI
    finished = threading.Event()
    if timeout > 0:
        threading.Thread(target=_give_up_on_init, args=(finished, timeout, MPI), daemon=True,
                         name="hpcopt-mpi-init-watchdog").start()
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
    """This process's rank as the launcher numbered it (before MPI knows), or "?"."""
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
                    f"({_library(initialised_mpi())}) as one job (srun needs --mpi=pmi2 for MPICH; an "
                    f"mpirun must come from the same MPI as mpi4py's library; see 'Which "
                    f"launcher' in docs/submit.md)")
    return None


def refuse_mismatched_launcher(world_size: int) -> None:
    """Exit 1 with one message (from the launcher's rank 0) on a launcher mismatch."""
    problem = launcher_mismatch(world_size)
    if problem:
        if launcher_rank() in ("0", "?"):
            sys.stderr.write(f"hpcopt: error: {problem}\n")
            sys.stderr.flush()
        sys.exit(1)
