"""Progress on rank 0: a bar on a terminal, one-line status in batch logs."""

from __future__ import annotations

import logging
import math
import os
import sys
import time

log = logging.getLogger("hpcopt")


class Progress:
    """done/total, rate, best so far and ETA; silent when quiet.

    On a terminal a tqdm bar; otherwise (SLURM logs) one line every
    `interval` seconds, so batch logs stay short but show the job is alive.
    """

    def __init__(self, total: int, *, label: str, quiet: bool = False,
                 interval: float | None = None, done: int = 0, unit: str = "task"):
        self.total, self.done, self.label = total, done, label
        self.best = math.inf
        self.quiet = quiet
        # HPCOPT_STATUS_INTERVAL (seconds) sets how often batch logs get a status line
        self.interval = interval if interval is not None else float(
            os.environ.get("HPCOPT_STATUS_INTERVAL", "30"))
        self.t0 = time.monotonic()
        self.start_done = done
        self.last_line = self.t0
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=done, desc=label, unit=unit,
                            dynamic_ncols=True, leave=False)

    def update(self, n: int = 1, best: float | None = None) -> None:
        self.done += n
        if best is not None and best < self.best:
            self.best = best
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(n)
            if math.isfinite(self.best):
                self.bar.set_postfix(best=f"{self.best:.6g}", refresh=False)
            return
        now = time.monotonic()
        if now - self.last_line >= self.interval:
            self.last_line = now
            log.info(self.line())

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = (self.done - self.start_done) / elapsed
        left = self.total - self.done
        eta = f"{left / rate:.0f} s" if rate > 0 else "?"
        best = f"{self.best:.6g}" if math.isfinite(self.best) else "-"
        return (f"{self.label}: {self.done}/{self.total} done, {rate:.3g}/s, best {best}, "
                f"ETA {eta}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif not self.quiet and self.done > self.start_done:
            log.info(self.line())
