"""Exit statuses of every hpcopt command, and the exceptions that map to them.

One table, listed the same way in README.md, the command-line help (cli.EPILOG) and
docs/reliability.md:

====  =================================================================================
 0    done (the campaign is complete)
 1    any other error, after every rank stopped (one message names rank and host)
 2    bad command line, config, data or result file (one message naming file and key),
      also a result file another run is writing
 3    interrupted by SIGTERM or SIGUSR1, or stopped because the file system is full:
      checkpointed, status "interrupted"; continue with --resume
 4    the campaign ran to its end but no task succeeded (the first error and the number
      of failures are printed)
130   interrupted by Ctrl-C (SIGINT): checkpointed as for 3 (128 + SIGINT, what shells
      report for Ctrl-C)
====  =================================================================================

A signal before hpcopt has started (the first tenth of a second, before its handlers
are installed) ends it with the signal's default action (128 + the signal number from
a shell, no result file is written).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 3
EXIT_NO_SUCCESS = 4
EXIT_CTRL_C = 130


def interrupted_exit_code(signal_name: str | None) -> int:
    """The exit status of a campaign that stopped early and checkpointed."""
    return EXIT_CTRL_C if signal_name == "SIGINT" else EXIT_INTERRUPTED


class HpcoptError(Exception):
    """Base class of errors hpcopt raises on purpose."""

    exit_code = EXIT_ERROR


class UsageError(HpcoptError):
    """Bad command line, config or data: exit status 2, one clear message."""

    exit_code = EXIT_USAGE


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
    """A result file cannot be used: foreign, corrupted, other kind, other config, newer
    version, or being written by another run."""


class Interrupted(HpcoptError):
    """The campaign stopped on SIGTERM/SIGUSR1 after checkpointing; resume with --resume."""

    exit_code = EXIT_INTERRUPTED

