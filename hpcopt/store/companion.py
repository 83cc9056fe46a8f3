"""Open the files hpcopt creates next to a result file without following planted links.

A result file's companions (``<result>.log``, ``<result>.lock``, the HPO journal
``<result>.journal``) live in the output directory, which may be shared (a project
directory, /tmp, a scratch file system).  Opening them by name with ``open()``
follows a symbolic link planted there, so the log would append into whatever file
the link names (``~/.bashrc``, another campaign's result file).  Every companion is
therefore opened with:

* ``O_NOFOLLOW``: a symbolic link in place of the file is refused (ELOOP), never
  followed; it is created with ``O_CREAT`` in the same call, so there is no window
  between a check and the open;
* ``O_NONBLOCK`` during the open, so a FIFO planted there cannot block the open;
* an ``fstat`` of the opened descriptor: anything but a regular file (FIFO, device,
  directory) is refused.

Only the last path component is protected: the output directory itself is the
user's choice (``-o`` or ``[output] path``).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..errors import ResultFileError

#: how each mode opens the file (all modes create a missing file)
_MODES = {
    "a": os.O_WRONLY | os.O_APPEND,   # log files: append only
    "r+": os.O_RDWR,                  # lock files, journals read and appended
    "w": os.O_WRONLY | os.O_TRUNC,    # files rewritten from scratch
}


def companion_fd(path: str | Path, mode: str = "a", *, perm: int = 0o644) -> int:
    """Open (creating if missing) a companion file; return its descriptor.

    Raises ResultFileError (exit 2) naming the file when it is a symbolic link or not a
    regular file, and for any other reason the file cannot be opened.
    """
    path = Path(path)
    flags = _MODES[mode] | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, perm)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ResultFileError(f"{path}: is a symbolic link; hpcopt never writes through a "
                                  "link next to the result file (remove it, or choose another "
                                  "output path)") from None
        if exc.errno in (errno.ENXIO, errno.EISDIR):   # a FIFO without reader, a directory
            raise _not_regular(path) from None
        raise ResultFileError(f"{path}: cannot open ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_companion(path: str | Path, mode: str = "a", *, encoding: str | None = "utf-8"):
    """`companion_fd` as a Python file object (text when `encoding` is given, else binary)."""
    fd = companion_fd(path, mode)
    return open(fd, mode if encoding else mode + "b", encoding=encoding)


def check_companion(path: str | Path) -> None:
    """Refuse a symbolic link or non-regular file at `path` before the run starts (for a
    file another library opens by name later, e.g. Optuna's journal; a missing file is
    fine and is not created)."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise ResultFileError(f"{path}: is a symbolic link; hpcopt never writes through a "
                              "link next to the result file (remove it, or choose another "
                              "output path)")
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path)


def ensure_companion(path: str | Path) -> None:
    """Create `path` if missing and check it is a regular file, not a link (for files that
    another library opens by name afterwards, e.g. Optuna's journal)."""
    os.close(companion_fd(path, "r+"))


def _not_regular(path: Path) -> ResultFileError:
    return ResultFileError(f"{path}: exists and is not a regular file (a FIFO, device or "
                           "directory); remove it or choose another output path")
