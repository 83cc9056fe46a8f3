"""Progress on rank 0: a bar on a terminal, one-line status in batch logs."""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time

log = logging.getLogger("hpcopt")

#: seconds to the first status line of a batch log (then every `interval`)
FIRST_LINE = 2.0


class Progress:
    """done/total, rate, best so far and ETA; silent when quiet.

    On a terminal a tqdm bar; otherwise (SLURM logs) a status line after
    :data:`FIRST_LINE` seconds and then every `interval` seconds
    (HPCOPT_STATUS_INTERVAL, default 30), written by a sleeping thread: the lines come
    on time even while rank 0 evaluates a long task itself, and batch logs stay short
    but show the job is alive.  An interval of 0 writes a line at every update.

    `update` counts finished tasks against the total; `retry` counts an attempt that
    will run again (HPO ``max_retries``), which is not progress.
    """

    def __init__(self, total: int, *, label: str, quiet: bool = False,
                 interval: float | None = None, done: int = 0, unit: str = "task"):
        self.total, self.done, self.label = total, done, label
        self.best = math.inf
        self.retried = 0
        self.quiet = quiet
        self.interval = interval if interval is not None else float(
            os.environ.get("HPCOPT_STATUS_INTERVAL", "30"))
        self.t0 = time.monotonic()
        self.start_done = done
        self.bar = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        if quiet:
            return
        if sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=done, desc=label, unit=unit,
                            dynamic_ncols=True, leave=False)
        elif self.interval > 0:
            self._thread = threading.Thread(target=self._status_lines, daemon=True,
                                            name="hpcopt-progress")
            self._thread.start()

    def _status_lines(self) -> None:
        wait = min(FIRST_LINE, self.interval)
        while not self._stop.wait(wait):        # sleeps: no CPU between lines
            log.info(self.line())
            wait = self.interval

    def update(self, n: int = 1, best: float | None = None) -> None:
        """`n` more tasks finished; `best` the lowest objective among them, if known."""
        self.done += n
        if best is not None and best < self.best:
            self.best = best
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(n)
            if math.isfinite(self.best):
                self.bar.set_postfix(best=f"{self.best:.6g}", refresh=False)
        elif self.interval <= 0:
            log.info(self.line())

    def retry(self, n: int = 1) -> None:
        """`n` failed attempts that run again: shown apart, not counted as done."""
        self.retried += n

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = (self.done - self.start_done) / elapsed
        left = max(self.total - self.done, 0)
        eta = f"{left / rate:.0f} s" if rate > 0 else "?"
        best = f"{self.best:.6g}" if math.isfinite(self.best) else "-"
        again = f" ({self.retried} retried)" if self.retried else ""
        return (f"{self.label}: {self.done}/{self.total} done{again}, {rate:.3g}/s, "
                f"best {best}, ETA {eta}")

    def close(self) -> None:
        """Stop the status lines; a last line if anything was done (once)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self.bar is not None:
            self.bar.close()
        elif not self.quiet and self.done > self.start_done:
            log.info(self.line())
