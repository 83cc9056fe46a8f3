"""Exceptions that the command line maps to exit codes (README.md, "Exit status").

ConfigError and DataError exit 2 with one message; everything else exits 1.
"""

from __future__ import annotations


class HpcoptError(Exception):
    """Base class of errors hpcopt raises on purpose."""

    exit_code = 1


class UsageError(HpcoptError):
    """Bad command line, config or data: exit status 2, one clear message."""

    exit_code = 2


class ConfigError(UsageError):
    """A config value is missing, unknown or invalid.

    The message names the file and the key, e.g.
    ``fit.toml: parameters.b1.min: expected a number, got 'abc'``.
    """

    def __init__(self, problem: str, *, key: str | None = None, source: str | None = None):
        self.problem = problem
        self.key = key
        self.source = source
        where = ": ".join(p for p in (source, key) if p)
        super().__init__(f"{where}: {problem}" if where else problem)


class DataError(UsageError):
    """A data file is missing, unreadable or holds bad values (names file and problem)."""

    def __init__(self, problem: str, *, path: str | None = None):
        self.problem = problem
        self.path = path
        super().__init__(f"{path}: {problem}" if path else problem)


class ResultFileError(UsageError):
    """A result file cannot be used: foreign, corrupted, other kind, other config, newer version."""


class Interrupted(HpcoptError):
    """The campaign stopped on SIGTERM/SIGUSR1 after checkpointing; resume with --resume."""

    exit_code = 3
