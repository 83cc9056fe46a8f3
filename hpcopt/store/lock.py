"""One writer per result file: an exclusive kernel lock on ``<result>.lock``.

Two runs onto one result file (a second ``--force`` or ``--resume`` while the first
still writes) would interleave their rows and attributes.  The run that writes a
result file therefore holds an exclusive POSIX record lock (``fcntl.lockf``) on a
companion file next to it for as long as the result file is open for writing:

* the kernel drops the lock when its holder ends, however it ends (exit, kill -9,
  segfault), so a lock file left behind by a dead run never blocks the next one;
  POSIX locks are not inherited by forked children, so an objective's lingering
  child cannot keep it either;
* the lock works across hosts on NFS (the NFS lock manager or NFSv4 leases; a host
  that crashes loses its lock when its lease expires, 90 s by default), so no pid
  check is needed or attempted across hosts;
* host, pid and start time of the holder are written into the lock file for the
  refusal message only; they never decide who holds the lock;
* the lock file is opened through :mod:`hpcopt.store.companion` (a symbolic link
  planted in its place is refused, never followed);
* a file system without locks (Lustre mounted without ``flock``, NFS with ``nolock``)
  gives a warning and no exclusion instead of an error.

POSIX locks belong to the process, and closing *any* descriptor of the locked file
in the holding process drops them; this module therefore keeps the only
descriptor, and a second acquisition in the same process is refused before the
file is opened again.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import logging
import os
import socket
from pathlib import Path

from ..errors import ResultFileError
from .companion import companion_fd

log = logging.getLogger("hpcopt")

#: errors that mean "this file system cannot lock", not "someone holds the lock"
_NO_LOCKS = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}
#: the lock paths this process holds (see the module docstring)
_HELD: dict[str, "WriterLock"] = {}
_HOLDER_BYTES = 4096


def lock_path(result_path: str | Path) -> Path:
    """The companion lock file of a result file."""
    return Path(str(result_path) + ".lock")


class WriterLock:
    """The exclusive writer lock of one result file (see the module docstring).

    Use :func:`acquire_writer_lock`; :meth:`release` (or the end of the process) frees it.
    """

    def __init__(self, result_path: Path, path: Path, fd: int | None):
        self.result_path = result_path
        self.path = path
        self._fd = fd          # None: the file system cannot lock (warned once)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        _HELD.pop(_key(self.path), None)
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # remove while still locked: a run that opened the old file meanwhile sees, once
            # it gets the lock, that the file is no longer at the path and starts over
            os.unlink(self.path)
        except OSError:
            pass
        os.close(fd)

    def __enter__(self) -> "WriterLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire_writer_lock(result_path: str | Path) -> WriterLock:
    """Take the writer lock of `result_path` or raise ResultFileError (exit 2) naming the
    run that holds it (host, pid, start time)."""
    result_path = Path(result_path)
    path = lock_path(result_path)
    held_here = _HELD.get(_key(path))
    if held_here is not None:
        raise _busy(result_path, _holder_text(_me()))
    for _ in range(100):    # each retry means a holder released while we opened: rare
        fd = companion_fd(path, "r+")
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise _busy(result_path, _holder_text(holder)) from None
            if exc.errno in _NO_LOCKS:
                log.warning(f"{path.parent}: the file system does not support file locks; "
                            f"hpcopt cannot stop a second run from writing {result_path.name} "
                            "at the same time")
                return WriterLock(result_path, path, None)
            raise ResultFileError(f"{path}: cannot lock ({exc.strerror})") from None
        if not _still_at(fd, path):
            os.close(fd)
            continue
        _write_holder(fd)
        lock = WriterLock(result_path, path, fd)
        _HELD[_key(path)] = lock
        return lock
    raise ResultFileError(f"{path}: the lock file keeps changing; is another run starting "
                          "and stopping on the same result file?")


def _key(path: Path) -> str:
    return str(path.resolve())


def _still_at(fd: int, path: Path) -> bool:
    """True when the locked descriptor is still the file at `path` (not removed by its
    previous holder between our open and our lock)."""
    st = os.fstat(fd)
    try:
        cur = os.lstat(path)
    except FileNotFoundError:
        return False
    return (cur.st_dev, cur.st_ino) == (st.st_dev, st.st_ino)


def _me() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}


def _write_holder(fd: int) -> None:
    """Who holds the lock, for another run's message. Only informative: the kernel lock
    excludes by itself, so a full disk (the holder text not written) is no error here
    (the campaign's own checks report the full disk)."""
    data = json.dumps(_me()).encode() + b"\n"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)       # other NFS clients read it without holding the lock
    except OSError as exc:
        log.debug(f"writer lock: holder not recorded ({exc})")


def _read_holder(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, _HOLDER_BYTES, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _holder_text(holder: dict) -> str:
    host, pid, since = holder.get("host"), holder.get("pid"), holder.get("since")
    if not isinstance(host, str) or not isinstance(pid, int):
        return "holder not recorded yet"
    text = f"pid {pid} on host {host}"
    return f"{text}, since {since}" if isinstance(since, str) else text


def _busy(result_path: Path, holder: str) -> ResultFileError:
    return ResultFileError(f"{result_path}: another hpcopt run is writing this result file "
                           f"({holder}); wait for it to end, or choose another output path")
