"""Logging set-up: rank 0 talks, other ranks only warn; optional log file next to the results.

Every line, on stderr and in the log file, starts with the date and time, the rank
and the host, so lines from batch logs of many jobs (and of array tasks appending to
one terminal) can be told apart and put in order:
``2026-12-01 09:30:34+0100 [rank 0 node17] hpcopt: sweep: 30/30 done ...``.
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

from .store.companion import open_companion

log = logging.getLogger("hpcopt")

#: date and time of every log line (local time with the UTC offset: nodes may differ)
DATE_FORMAT = "%Y-%m-%d %H:%M:%S%z"
_WHO = {"rank": 0, "host": socket.gethostname()}


def _who() -> str:
    return f"[rank {_WHO['rank']} {_WHO['host']}]"


def setup_logging(rank: int, *, quiet: bool = False, verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    if rank != 0:
        level = logging.DEBUG if verbose else logging.WARNING
    _WHO["rank"] = rank
    log.setLevel(level)
    log.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s {_who()} hpcopt: %(message)s",
                                           DATE_FORMAT))
    log.addHandler(handler)
    log.propagate = False


def add_log_file(path: Path) -> Path:
    """Also log to `path` (rank 0: the result file's FILE.log, campaign.paths), appending.

    The file is opened through :func:`hpcopt.store.companion.open_companion`: a symbolic
    link or a FIFO planted in its place is refused (ResultFileError, exit 2), never followed.
    """
    path = Path(path)
    handler = _LogFileHandler(path)
    handler.setFormatter(logging.Formatter(f"%(asctime)s {_who()} %(levelname)s %(message)s",
                                           DATE_FORMAT))
    handler.setLevel(logging.DEBUG)
    log.addHandler(handler)
    if log.level > logging.INFO:
        handler.setLevel(log.level)
    return path


class _LogFileHandler(logging.StreamHandler):
    """The log file; when it cannot be written (a full disk) one line says so on stderr and
    the file is dropped, instead of a traceback per log line."""

    def __init__(self, path: Path):
        super().__init__(open_companion(path, "a"))
        self.path = path

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        sys.stderr.write(f"hpcopt: cannot write the log file {self.path} ({exc}); "
                         "logging to stderr only\n")
        log.removeHandler(self)


def close_log_files() -> None:
    """Close the log files added by add_log_file (stderr stays)."""
    for handler in list(log.handlers):
        if handler.stream is not sys.stderr:
            log.removeHandler(handler)
            handler.stream.close()
