"""Logging set-up: rank 0 talks, other ranks only warn; optional log file next to the results."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

log = logging.getLogger("hpcopt")


def setup_logging(rank: int, *, quiet: bool = False, verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    if rank != 0:
        level = logging.DEBUG if verbose else logging.WARNING
    log.setLevel(level)
    log.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    fmt = "%(asctime)s hpcopt: %(message)s" if rank == 0 else f"%(asctime)s hpcopt[rank {rank}]: %(message)s"
    handler.setFormatter(logging.Formatter(fmt, "%H:%M:%S"))
    log.addHandler(handler)
    log.propagate = False


def add_log_file(result_path: Path) -> Path:
    """Also log to <result>.log next to the result file (rank 0)."""
    path = Path(str(result_path) + ".log")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    log.addHandler(handler)
    if log.level > logging.INFO:
        handler.setLevel(log.level)
    return path
