"""Run one trial as an external command (never through a shell).

Each argv item is a template filled with ``str.format`` fields, one item in, one item
out (spaces and quotes in values stay inside their item):

* ``{name}`` for every search-space parameter: strings as is, ints, floats (shortest
  round-trip text), booleans ``true``/``false``, lists and tables as JSON;
  a format spec works for numbers (``{lr:.3e}``). An item naming a conditional
  parameter that is inactive in this trial is left out, so write ``--momentum={momentum}``.
* ``{trial_dir}``, ``{trial_number}``, ``{attempt}``, ``{seed}``, ``{result_file}``,
  ``{progress_file}``, ``{params_file}`` (params as JSON, written before the start),
  ``{params_json}``, ``{python}`` (this interpreter), ``{config_dir}`` (the config
  file's folder: ``{config_dir}/train.py`` for a script next to the config).

The command runs in ``<workdir>/trial_<number>`` with stdout/stderr in ``stdout.txt`` and
``stderr.txt`` there, in its own process group (killed as a whole on timeout or prune).
It writes ``{"value": <number>, ...}`` (or ``{"error": "message"}``) to the result file;
lines ``{"step": s, "value": v}`` appended to the progress file are passed to report(),
and when report says stop the command is terminated and the trial is pruned. Both must
be regular files: a FIFO, device or socket in their place is never opened for reading
(it could block the worker forever), so the trial stays bounded by ``trial_timeout``. A
stop signal (SIGTERM/SIGUSR1) on the worker terminates the command; the trial is
re-run on ``--resume``.
The same names are in the environment: HPCOPT_TRIAL_DIR, HPCOPT_TRIAL_NUMBER,
HPCOPT_RESULT_FILE, HPCOPT_PROGRESS_FILE, HPCOPT_PARAMS_FILE, HPCOPT_SEED.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..mpi.runtime import stop_requested
from ..objective_value import objective_value
from .argv_template import PARAMS_FILE, build_argv
from .config import ObjectiveConfig
from .trials import Reporter, ReportFn, TrialOutcome, TrialSpec

class CommandRunner:
    """Runs trials of ``[objective] command`` under `trial_root`."""

    def __init__(self, cfg: ObjectiveConfig, trial_root: Path, *, kill_grace: float = 5.0,
                 max_poll: float = 0.5):
        self.cfg, self.trial_root = cfg, Path(trial_root)
        self.kill_grace, self.max_poll = kill_grace, max_poll

    def trial_dir(self, number: int) -> Path:
        return self.trial_root / f"trial_{number:06d}"

    def __call__(self, spec: TrialSpec, report: ReportFn | None = None,
                 worker: str = "") -> TrialOutcome:
        cfg, tdir = self.cfg, self.trial_dir(spec.number)
        tdir.mkdir(parents=True, exist_ok=True)
        result, progress = tdir / cfg.result_file, tdir / cfg.progress_file
        for stale in (result, progress):
            stale.unlink(missing_ok=True)
        params_json = json.dumps(spec.params)
        (tdir / PARAMS_FILE).write_text(params_json + "\n")
        fields = {**spec.params, "trial_dir": str(tdir), "trial_number": spec.number,
                  "attempt": spec.attempt, "seed": spec.seed, "result_file": str(result),
                  "progress_file": str(progress), "params_file": str(tdir / PARAMS_FILE),
                  "params_json": params_json, "python": sys.executable,
                  "config_dir": str(cfg.config_dir or Path.cwd())}
        argv = build_argv(cfg.command, fields)
        env = {**os.environ, **dict(cfg.env),
               "HPCOPT_TRIAL_DIR": str(tdir), "HPCOPT_TRIAL_NUMBER": str(spec.number),
               "HPCOPT_RESULT_FILE": str(result), "HPCOPT_PROGRESS_FILE": str(progress),
               "HPCOPT_PARAMS_FILE": str(tdir / PARAMS_FILE), "HPCOPT_SEED": str(spec.seed)}
        reporter = Reporter(report)
        started, t0 = time.time(), time.perf_counter()
        with open(tdir / "stdout.txt", "wb") as out, open(tdir / "stderr.txt", "wb") as err:
            try:
                proc = subprocess.Popen(argv, cwd=tdir, stdout=out, stderr=err,
                                        stdin=subprocess.DEVNULL, env=env,
                                        start_new_session=True)
            except OSError as exc:
                return TrialOutcome(spec.number, "failed", None,
                                    f"cannot start {argv[0]!r}: {exc}", started,
                                    time.perf_counter() - t0, worker)
            ended = self._supervise(proc, spec.timeout, progress, reporter, t0)
        duration = time.perf_counter() - t0
        if ended == "pruned":
            last = reporter.last[1] if reporter.last else None
            return TrialOutcome(spec.number, "pruned", last, None, started, duration, worker)
        if ended == "timeout":
            return TrialOutcome(spec.number, "failed", None,
                                f"timed out after {spec.timeout:g} s (process group killed)"
                                + _tail(tdir / "stderr.txt"), started, duration, worker)
        if ended == "interrupted":
            return TrialOutcome(spec.number, "failed", None,
                                "stopped by a signal (process group killed)", started,
                                duration, worker, interrupted=True)
        value, info, error = read_result(result, proc.returncode, cfg.result_key)
        if error is not None:
            error += _tail(tdir / "stderr.txt")
        state = "complete" if error is None else "failed"
        if state == "complete" and info.pop("pruned", False):
            state = "pruned"
        return TrialOutcome(spec.number, state, value, error, started, duration, worker, info)

    def _supervise(self, proc: subprocess.Popen, timeout: float | None, progress: Path,
                   reporter: Reporter, t0: float) -> str:
        """Wait for the command, forwarding progress; "exited", "pruned", "timeout" or
        "interrupted" (a stop signal reached this rank)."""
        tail = _ProgressTail(progress)
        poll = 0.02
        while True:
            try:
                proc.wait(timeout=poll)
                for step, value in tail.read_new():      # lines written just before exit
                    reporter(step, value)
                return "exited"
            except subprocess.TimeoutExpired:
                pass
            for step, value in tail.read_new():
                if reporter(step, value):
                    self._kill(proc)
                    return "pruned"
            if timeout is not None and time.perf_counter() - t0 > timeout:
                self._kill(proc)
                return "timeout"
            if stop_requested():
                self._kill(proc)
                return "interrupted"
            poll = min(poll * 1.5, self.max_poll)

    def _kill(self, proc: subprocess.Popen) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period."""
        for sig, wait in ((signal.SIGTERM, self.kill_grace), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:                                       # children that ignored SIGTERM
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class _ProgressTail:
    """Reads complete new lines of the progress file: (step, value) pairs."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def read_new(self) -> list[tuple[int, float]]:
        try:
            with open_regular(self.path) as f:
                f.seek(self.offset)
                data = f.read()
        except (FileNotFoundError, NotRegularFile):
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        out = []
        for line in data[:end].splitlines():
            try:
                entry = json.loads(line)
                step, value = entry["step"], float(entry["value"])
            except (ValueError, KeyError, TypeError):
                continue                            # not a progress line: ignore
            if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
                out.append((step, value))
        return out


def read_result(path: Path, returncode: int, key: str = "value"
                ) -> tuple[float | None, dict, str | None]:
    """(value, info, error) from the command's result file and exit status."""
    status = _status_text(returncode)
    try:
        with open_regular(path) as f:
            data = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        return None, {}, f"{status} and wrote no {path.name}"
    except NotRegularFile as exc:
        return None, {}, f"{status}; {exc}"
    except (OSError, ValueError) as exc:     # UnicodeDecodeError is a ValueError
        return None, {}, f"{status}; {path.name} is not JSON ({exc})"
    if not isinstance(data, dict):
        return None, {}, f"{path.name} must hold a JSON object"
    info = {k: v for k, v in data.items() if k not in (key, "error")}
    message = data.get("error")
    if returncode != 0:
        return None, info, status + (f": {message}" if isinstance(message, str) else "")
    if isinstance(message, str) and message:
        return None, info, message
    value = data.get(key)
    if data.get("pruned") is True and value is None:
        return None, info, None
    try:
        number = objective_value(value, f"{path.name}: {key!r}")
    except TypeError as exc:
        return None, info, str(exc)
    if not math.isfinite(number):
        return None, info, f"{path.name}: {key!r} must be a finite number, got {value!r}"
    return number, info, None


def _status_text(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"command killed by {name}"
    return f"command exited with status {returncode}"


class NotRegularFile(OSError):
    """A trial file is a FIFO, device, socket or directory (reading it could block)."""


def open_regular(path: Path):
    """Open `path` for reading only if it is a regular file: O_NONBLOCK makes opening a
    FIFO return at once (a plain open() waits for a writer), then fstat decides."""
    import stat
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "a device")
            raise NotRegularFile(f"{Path(path).name} is {kind}, not a regular file "
                                 "(not read)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _tail(path: Path, max_chars: int = 2000) -> str:
    try:
        with open_regular(path) as f:
            text = f.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return ""
    return f"\n--- stderr (end) ---\n{text[-max_chars:]}" if text else ""
