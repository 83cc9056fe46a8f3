"""Where the farm learns that the job must stop (SIGTERM/SIGUSR1 on some rank)."""

from __future__ import annotations

from typing import Protocol

from ..mpi import runtime


class StopFlag(Protocol):
    def signal(self) -> int | None:
        """The stop signal this rank received or was told about, None if none."""

    def request(self, signum: int) -> None:
        """Stop as if `signum` had arrived here (another rank received it)."""


class ProcessStop:
    """The rank's own flag, set by the SIGTERM/SIGUSR1 handlers of hpcopt.mpi.runtime."""

    def signal(self) -> int | None:
        return runtime.stop_signal()

    def request(self, signum: int) -> None:
        runtime.request_stop_signal(signum)


class LocalStop:
    """A flag of its own (a simulated rank of the threaded tests, which share a process)."""

    def __init__(self, signum: int | None = None):
        self.signum = signum

    def signal(self) -> int | None:
        return self.signum

    def request(self, signum: int) -> None:
        if self.signum is None:
            self.signum = int(signum)
