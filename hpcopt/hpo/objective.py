"""Worker side: run one trial of a Python objective or an external command.

``make_runner(config)`` gives ``runner(spec, report, worker="") -> TrialOutcome``. The
campaign injects `report(step, value) -> bool`, which asks the coordinator whether to
stop (:meth:`HpoPolicy.report`). Objectives:

* ``g(params)`` or ``g(params, report)`` (also ``report`` as a keyword-only argument);
  returns a number, or a dict with ``"value"`` and more JSON (kept as ``info``).
  When ``report`` has said stop, the objective should return (any value) or raise
  :class:`TrialPruned`; the trial is recorded as pruned with its last reported value.
* Exceptions, NaN/inf and non-numbers (hpcopt.objective_value: no strings, no
  booleans) make the trial fail with the error recorded;
  ``trial_timeout`` raises :class:`TrialTimeout` inside the objective (SIGALRM, main
  thread; code stuck in C is interrupted when it returns to Python).
"""

from __future__ import annotations

import inspect
from dataclasses import replace
import math
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from ..imports import load_callable
from ..objective_value import objective_value
from ..timelimit import TaskTimeout, time_limit
from .config import HpoConfig
from .trials import Reporter, ReportFn, TrialOutcome, TrialSpec

Runner = Callable[..., TrialOutcome]


class TrialPruned(Exception):
    """Raise inside an objective to stop the trial as pruned (optuna.TrialPruned works too)."""


#: raised inside an objective when its trial_timeout has passed (hpcopt.timelimit)
TrialTimeout = TaskTimeout


def report_mode(func: Callable) -> str:
    """How `func` takes report: "positional", "keyword" or "none"; ConfigError if neither fits."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return "none"
    kinds = inspect.Parameter
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY,
                                                  kinds.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(required) > 2 or any(p.kind == kinds.KEYWORD_ONLY and p.default is p.empty
                                and p.name != "report" for p in params):
        raise ValueError("the objective must take (params) or (params, report)")
    if len(positional) >= 2 or any(p.kind == kinds.VAR_POSITIONAL for p in params):
        return "positional"
    if "report" in sig.parameters:
        return "keyword"
    if not positional and not any(p.kind == kinds.VAR_POSITIONAL for p in params):
        raise ValueError("the objective must take (params) or (params, report)")
    return "none"


class PythonRunner:
    """Runs trials of a Python callable in this process."""

    def __init__(self, func: Callable):
        self.func = func
        self.mode = report_mode(func)

    def __call__(self, spec: TrialSpec, report: ReportFn | None = None,
                 worker: str = "") -> TrialOutcome:
        reporter = Reporter(report)
        params = _fresh(spec.params)      # the objective may change its dict: not the spec's
        started, t0 = time.time(), time.perf_counter()
        state, value, error, info = "failed", None, None, {}
        try:
            with time_limit(spec.timeout):
                if self.mode == "positional":
                    result = self.func(params, reporter)
                elif self.mode == "keyword":
                    result = self.func(params, report=reporter)
                else:
                    result = self.func(params)
            if reporter.stop_requested:
                state = "pruned"
            else:
                value, info, error = parse_result(result)
                state = "complete" if error is None else "failed"
        except TrialTimeout:
            error = f"timed out after {spec.timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - every objective error is data
            if _is_pruned(exc):
                state = "pruned"
            else:
                error = format_error(exc)
        if state == "pruned":
            value, error = (reporter.last[1] if reporter.last else None), None
        return TrialOutcome(spec.number, state, value, error, started,
                            time.perf_counter() - t0, worker, info)


def parse_result(result: Any) -> tuple[float | None, dict, str | None]:
    """(value, info, error) from what an objective returned."""
    info: dict = {}
    if isinstance(result, dict):
        info = {k: v for k, v in result.items() if k != "value"}
        if "value" not in result:
            return None, info, "objective returned a dict without 'value'"
        result = result["value"]
    try:
        value = objective_value(result)
    except TypeError as exc:
        return None, info, str(exc)
    if not math.isfinite(value):
        return None, info, f"objective returned {value}"
    return value, _jsonable(info), None


def format_error(exc: BaseException, frames: int = 3) -> str:
    """``Type: message`` plus the innermost traceback frames."""
    tb = traceback.extract_tb(exc.__traceback__)[-frames:]
    where = "".join(traceback.format_list(tb)).rstrip()
    return f"{type(exc).__name__}: {exc}" + (f"\n{where}" if where else "")


def _is_pruned(exc: BaseException) -> bool:
    if isinstance(exc, TrialPruned):
        return True
    try:
        import optuna
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, optuna.TrialPruned)


def _fresh(value: Any) -> Any:
    """A copy of the lists, dicts and tuples in `value`, sharing the immutable leaves (what
    copy.deepcopy gives for the values a search space holds, at a tenth of its cost)."""
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_fresh(v) for v in value)
    return value


def _jsonable(info: dict) -> dict:
    if not info:
        return {}
    import json
    try:
        return json.loads(json.dumps(info, default=str, allow_nan=False))
    except ValueError:
        return {"note": "objective info was not JSON (nan/inf)"}


def load_objective(config: HpoConfig, check: Callable[[Callable], Any] | None = None
                   ) -> Callable:
    """Import ``[objective] function`` and check its signature with `check` (default: the
    g(params[, report]) forms); ConfigError (exit 2) otherwise."""
    func = load_callable(config.objective.function, key="objective.function",
                         source=config.source, base_dir=config.base_dir)
    try:
        (check or report_mode)(func)
    except ValueError as exc:
        raise ConfigError(str(exc), key="objective.function", source=config.source) from None
    space = getattr(config, "space", None)
    if hasattr(func, "hpcopt_params") and space is not None:   # declared with hpcopt.declare.takes
        from ..declare import params_problem
        problem = params_problem(func, space.names)
        if problem:
            unknown = [n for n in space.names if n not in
                       set(func.hpcopt_params[0]) | set(func.hpcopt_params[1])]
            raise ConfigError(f"{config.objective.function} {problem}",
                              key=f"space.{unknown[0]}" if unknown else "space",
                              source=config.source)
    return func


class ProposingRunner:
    """A runner that also draws the next trial on this worker while the trial runs, when
    the coordinator asks for it (TrialSpec.propose_seed; see propose.py)."""

    def __init__(self, runner: Runner, config: HpoConfig):
        from .propose import WorkerProposer
        self.runner = runner
        self.proposer = WorkerProposer(config.hpo, config.space)
        if _is_worker_rank():         # warm up while the job starts, not on the first trial
            self.proposer.warm()

    def __call__(self, spec: TrialSpec, report: ReportFn | None = None,
                 worker: str = "") -> TrialOutcome:
        if spec.propose_seed is None:
            return self.runner(spec, report, worker=worker)
        self.proposer.start(spec.propose_seed)
        outcome = self.runner(spec, report, worker=worker)
        proposal = self.proposer.take()          # waits once the replica is loaded
        return outcome if proposal is None else replace(outcome, proposal=proposal)


def _is_worker_rank() -> bool:
    """A rank > 0 of a running MPI job (the only ranks the coordinator asks to draw)."""
    try:
        from mpi4py import MPI
    except ImportError:
        return False
    return bool(MPI.Is_initialized() and MPI.COMM_WORLD.Get_rank() > 0)


def make_runner(config: HpoConfig, trial_root: str | Path | None = None) -> Runner:
    """The trial runner for ``[objective]``: a PythonRunner or a CommandRunner (wrapped in
    a ProposingRunner when workers may be asked to draw trials)."""
    from .samplers import REPLICA_SAMPLERS
    if config.objective.function is not None:
        runner: Runner = PythonRunner(load_objective(config))
    else:
        from .external import CommandRunner
        root = trial_root or config.objective.workdir or Path.cwd() / "trials"
        runner = CommandRunner(config.objective, Path(root))
    if config.hpo.storage.kind == "journal" and config.hpo.sampler in REPLICA_SAMPLERS:
        return ProposingRunner(runner, config)
    return runner
