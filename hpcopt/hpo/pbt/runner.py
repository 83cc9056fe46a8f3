"""Worker side of PBT: run one segment of a checkpointing objective.

A PBT objective is ``f(params, ctx) -> float | dict | None``::

    def train(params, ctx):
        state = ctx.load()                       # dict of arrays, or None for a fresh start
        w = state["w"] if state else init()
        for step in ctx.steps:                   # start_step + 1 .. end_step
            w = update(w, params["lr"])
            ctx.report(step, loss(w))
        ctx.save(w=w)                            # into ctx.checkpoint_dir (a .npz, no pickle)
        return loss(w)                           # None: the last reported value

The segment's score is the returned number (or ``{"value": x, ...}``, extra keys kept as
info), else the last reported value. ``ctx.restore_from`` may be another member's
checkpoint (exploit): read it, never write into it. Objectives with their own formats use
``ctx.checkpoint_dir`` / ``ctx.restore_from`` (Paths) directly.
"""

from __future__ import annotations

import copy
import inspect
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...timelimit import time_limit
from ..objective import (Reporter, TrialTimeout, format_error, load_objective,
                        parse_result)
from .lineage import SegmentOutcome, SegmentSpec
from ..trials import ReportFn

#: the file ctx.save()/ctx.load() use inside a checkpoint folder
STATE_FILE = "state.npz"

PbtRunner = Callable[..., dict]


@dataclass
class PbtContext:
    """What a PBT objective gets besides its hyperparameters."""

    member: int
    segment: int
    start_step: int               # steps already in the restored state
    end_step: int                 # train until this step
    checkpoint_dir: Path          # save the state here (exists, empty)
    restore_from: Path | None     # restore from here (read only); None: fresh start
    seed: int                     # for the objective's own random numbers
    _reporter: Reporter = field(repr=False, default_factory=lambda: Reporter(None))
    reports: list = field(repr=False, default_factory=list)   # [step, value] pairs so far

    @property
    def steps(self) -> range:
        """The steps of this segment: start_step + 1 .. end_step."""
        return range(self.start_step + 1, self.end_step + 1)

    def report(self, step: int, value: float) -> bool:
        """An intermediate value (the last one is the score if the objective returns None)."""
        stop = self._reporter(step, value)
        self.reports.append([int(step), float(value)])
        return stop

    def save(self, **arrays: Any) -> Path:
        """Write arrays to ``checkpoint_dir/state.npz`` (no pickle); returns the file."""
        path = self.checkpoint_dir / STATE_FILE
        np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})
        return path

    def load(self) -> dict[str, np.ndarray] | None:
        """The arrays saved by the segment restored from, or None for a fresh start."""
        if self.restore_from is None:
            return None
        with np.load(self.restore_from / STATE_FILE, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}


def check_pbt_objective(func: Callable) -> None:
    """ValueError unless `func` can be called as ``func(params, ctx)``."""
    try:
        inspect.signature(func).bind(None, None)
    except TypeError:
        raise ValueError("a PBT objective must take (params, ctx); see docs/pbt.md") from None
    except ValueError:   # builtins without a signature: assume it fits
        pass


def load_pbt_objective(config) -> Callable:
    """Import ``[objective] function`` of an :class:`HpoConfig` and check it takes (params, ctx)."""
    return load_objective(config, check_pbt_objective)


def run_segment(func: Callable, payload: dict | SegmentSpec, report: ReportFn | None = None,
                worker: str = "") -> dict:
    """Run one segment (`payload`: a SegmentSpec dict); returns a SegmentOutcome dict.

    Every error of the objective (exception, timeout, no score) becomes a failed outcome.
    """
    spec = payload if isinstance(payload, SegmentSpec) else SegmentSpec.from_dict(payload)
    reporter = Reporter(report)
    started, t0 = time.time(), time.perf_counter()
    state, score, error, info = "failed", None, None, {}
    ctx = None
    try:
        ckpt = Path(spec.checkpoint_dir)
        if ckpt.exists():   # left over by a killed run of the same segment
            shutil.rmtree(ckpt)
        ckpt.mkdir(parents=True)
        ctx = PbtContext(spec.member, spec.segment, spec.start_step, spec.end_step, ckpt,
                         None if spec.restore_from is None else Path(spec.restore_from),
                         spec.seed, reporter)
        with time_limit(spec.timeout):
            result = func(copy.deepcopy(spec.params), ctx)
        if result is None:
            if reporter.last is None:
                error = "the objective returned None and reported no value"
            else:
                score = reporter.last[1]
        else:
            score, info, error = parse_result(result)
        state = "complete" if error is None else "failed"
    except TrialTimeout:
        error = f"timed out after {spec.timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - every objective error is data
        error = format_error(exc)
    if state == "failed":
        score = None
    return SegmentOutcome(spec.task_id, state, score,
                          reporter.last[0] if reporter.last else -1, error, started,
                          time.perf_counter() - t0, worker, info,
                          ctx.reports if ctx is not None else []).to_dict()


def make_pbt_runner(config) -> PbtRunner:
    """``runner(payload, report=None, worker="") -> outcome dict`` for an HpoConfig."""
    func = load_pbt_objective(config)

    def runner(payload: dict, report: ReportFn | None = None, worker: str = "") -> dict:
        return run_segment(func, payload, report, worker)

    return runner
