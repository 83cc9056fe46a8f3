"""A full file system stops a campaign the way a stop signal does: checkpoint, exit 3.

Result tables are preallocated, so rows of most campaigns never grow the result file;
but the end of a run (attributes, the ``best`` group, the final status), variable-length
HPO columns, the HPO journal and the log do need new space, and HDF5 cannot recover
from a failed metadata write: a file closed on a full disk is unreadable afterwards.
Every result file therefore comes with a reserve:

* ``<result>.reserve``, a companion file of :data:`RESERVE_BYTES` incompressible bytes,
  is written when the campaign opens its result file (create or resume) and removed
  when it closes it;
* before each write the store checks the free space of the file system; below
  :data:`LOW_WATER_BYTES` (or when a write fails with ENOSPC or EDQUOT) it removes the
  reserve, so the checkpoint that follows has room, and requests a stop of the
  campaign (:func:`hpcopt.mpi.runtime.request_stop`) with a reason naming the file
  system: the campaign then stops as for SIGTERM (status "interrupted", exit 3) and
  ``--resume`` continues it once there is space.

Writes outside the store that may fill the disk (the HPO journal) use :func:`guard`.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import ResultFileError
from ..mpi.runtime import request_stop
from .companion import companion_fd

log = logging.getLogger("hpcopt")

#: room kept for the checkpoint after the file system fills up
RESERVE_BYTES = 4 << 20
#: free space below which the store gives up the reserve and stops the campaign
LOW_WATER_BYTES = 1 << 20
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "errno = 28", "errno = 122")
_CHUNK = 1 << 20


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC/EDQUOT, also when HDF5 reports them as RuntimeError text."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    return isinstance(exc, (OSError, RuntimeError)) and any(t in str(exc) for t in _FULL_TEXTS)


def file_system(path: str | Path) -> str:
    """The mount point that holds `path` (for messages)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        dev = p.stat().st_dev
        while p != p.parent and p.parent.stat().st_dev == dev:
            p = p.parent
    except OSError:
        pass
    return str(p)


def reserve_path(result_path: str | Path) -> Path:
    return Path(str(result_path) + ".reserve")


class SpaceReserve:
    """The reserve of one result file (see the module docstring)."""

    def __init__(self, result_path: str | Path, nbytes: int = RESERVE_BYTES):
        self.result_path = Path(result_path)
        self.path = reserve_path(result_path)
        self.nbytes = nbytes
        self.held = False

    def take(self) -> None:
        """Write the reserve; ResultFileError (exit 2) naming the file system if no room."""
        fd = companion_fd(self.path, "w")
        try:
            left = self.nbytes
            while left > 0:        # random bytes: compressing file systems must store them
                n = min(left, _CHUNK)
                os.write(fd, os.urandom(n))
                left -= n
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            if is_disk_full(exc):
                raise ResultFileError(
                    f"{self.result_path}: the file system {file_system(self.path)} is full "
                    f"(hpcopt keeps {self.nbytes >> 20} MiB free next to the result file to "
                    "checkpoint if it fills up); make room and run again") from None
            raise ResultFileError(f"{self.path}: cannot write ({exc.strerror})") from None
        os.close(fd)
        self.held = True
        _HELD.add(self)

    def release(self) -> bool:
        """Remove the reserve; True when that freed space (it was held)."""
        _HELD.discard(self)
        held, self.held = self.held, False
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return held

    def low(self) -> bool:
        """True when the file system of the result file is nearly full."""
        try:
            return shutil.disk_usage(self.path.parent).free < LOW_WATER_BYTES
        except OSError:
            return False


#: the reserves this process holds (guard() frees them for writes outside the store)
_HELD: set[SpaceReserve] = set()


def disk_full(path: str | Path, exc: BaseException | None = None) -> None:
    """Free every reserve of this process and stop the campaign (exit 3), naming the file
    system of `path`."""
    for reserve in list(_HELD):
        reserve.release()
    reason = f"the file system {file_system(path)} is full (writing {path})"
    if request_stop(reason):
        detail = f" ({exc})" if exc is not None else ""
        log.warning(f"{reason}{detail}; stopping: what is finished is being saved")


@contextmanager
def guard(path: str | Path) -> Iterator[None]:
    """Turn a full file system inside the block into a stop request (the block's write is
    lost; what it wrote is redone by --resume); other errors pass."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        if not is_disk_full(exc):
            raise
        disk_full(path, exc)
