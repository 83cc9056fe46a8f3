"""The pieces of a sweep: target, start design, the farm's evaluator and row sink, summary.

Every rank builds the same target and start design (:func:`warmed_up`), and the task
farm evaluates starts: task i is start point i of the design, refined by the local
method.  Rows land in the result file in place (row i = task i), so the file is the same
at any rank count and in either farm mode, and `--resume` only runs the rows still
pending.  The campaign around it is hpcopt.sweep.kind.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from ..errors import ConfigError
from ..campaign.contract import RunOutcome, Session
from ..farm import (FarmOptions, ManyOutcome, Outcome, Task, TaskBatch, concat_rows, run_dynamic,
                    run_static)
from ..imports import load_callable
from ..progress import Progress
from ..report.text import outcome_counts, param_lines
from ..store import schema
from ..store.dtypes import SWEEP_POINTS, sweep_dtype, sweep_labels
from ..store.layout import labeled_column
from ..store.resultfile import FlushClock, ResultStore, TableSpec
from .config import SweepConfig
from .problem import ObjectiveProblem
from .starts import StartDesign

log = logging.getLogger("hpcopt")
TABLE = schema.MAIN_TABLE["sweep"]


# ---------------------------------------------------------------------------------------
# building the pieces (every rank builds the same ones)

def build_target(cfg: SweepConfig):
    """The FitProblem of the campaign (validates model, data and parameter names)."""
    if cfg.objective is not None:
        func = load_callable(cfg.objective, key="objective.function", source=cfg.file.source,
                             base_dir=cfg.file.base_dir)
        return ObjectiveProblem(func, cfg.param_names)
    from ..models.registry import build_problem
    problem = build_problem(cfg.model, cfg.data_path, data_options=cfg.data_options,
                            source=cfg.file.source, base_dir=cfg.file.base_dir,
                            param_names=cfg.param_names, model_options=cfg.model_options)
    names, model_names = set(cfg.param_names), set(problem.param_names)
    if names != model_names:
        missing, extra = sorted(model_names - names), sorted(names - model_names)
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"not parameters of the model: {', '.join(extra)}"] if extra else [])
        raise ConfigError(f"[parameters] must list every parameter of {cfg.model} "
                          f"({', '.join(problem.param_names)}): {'; '.join(parts)}",
                          key="parameters", source=cfg.file.source)
    return problem


def warmed_up(cfg: SweepConfig) -> tuple[object, StartDesign]:
    """The target and its start design, with the model's kernels compiled (or loaded from
    numba's cache) by one evaluation of chi2 and residuals at the first start.  Plain
    objectives are not evaluated (they may be expensive and have nothing to compile)."""
    problem = build_target(cfg)
    design = build_design(cfg, problem)
    if cfg.objective is None:
        x = design.point(0)
        with np.errstate(all="ignore"):
            try:
                problem.chi2(x)
                problem.residuals(x)
            except Exception:  # noqa: BLE001 - the sweep reports model errors per start
                pass
    return problem, design


def build_design(cfg: SweepConfig, problem) -> StartDesign:
    """Start points over every model parameter, in the model's order (fixed ones included)."""
    by_name = {p.name: p for p in cfg.params}
    specs = [by_name[n] for n in problem.param_names]
    return StartDesign(cfg.search_method, specs,
                       cfg.samples if cfg.search_method != "grid" else None, seed=cfg.run.seed)


def warm_plan(cfg: SweepConfig, problem, design: StartDesign, store: ResultStore,
              resume: bool) -> tuple[dict, np.ndarray | None]:
    """Rank 0: the root attrs `conditions` (every model fit, for a later history) and
    `warmstart`, and the warm start points (None without [warmstart])."""
    from ..warmstart import fit_conditions, plan_warm_starts, stored_points
    from ..warmstart.conditions import conditions_attr
    ws = cfg.warmstart
    if resume:
        return {}, (stored_points(store.file, len(design.param_names)) if ws else None)
    if cfg.model is None:
        return {}, None
    conditions = fit_conditions(ws.conditions if ws else None, cfg.model, cfg.data_path,
                                cfg.data_options, problem=problem)
    if ws is None:
        return {"conditions": conditions_attr(conditions)}, None
    plan = plan_warm_starts(ws, model=cfg.model, specs=design.specs, conditions=conditions,
                            seed=cfg.run.seed)
    log.info(plan.message())
    return plan.attrs(), plan.points


def with_warm_starts(cfg: SweepConfig, design: StartDesign, warm: np.ndarray | None):
    """The design with the warm starts first (the same on every rank and in the sandbox)."""
    if warm is None:
        return design
    from ..warmstart import WarmStartDesign
    return WarmStartDesign(design, np.asarray(warm, dtype=float), cfg.warmstart.design_fraction)


def reduced(chi2, problem, design: StartDesign):
    """chi2 per degree of freedom: points - free parameters - closed-form nuisance parameters
    (a float, or an array of them)."""
    dof = problem.n_points - design.dim - problem.n_nuisance
    if problem.n_points and dof > 0:
        return chi2 / dof
    return np.full(np.shape(chi2), math.nan) if np.ndim(chi2) else math.nan


# ---------------------------------------------------------------------------------------
# the two farm roles

class SweepEvaluator:
    """Every rank: start point of a task -> refined fit -> row values."""

    def __init__(self, cfg: SweepConfig, problem, design: StartDesign):
        from .local import evaluate_only, refine, start_chi2
        self.refine, self.evaluate_only, self.start_chi2 = refine, evaluate_only, start_chi2
        self.cfg, self.problem, self.design = cfg, problem, design
        # the starts of the batches in hand (prepare): task id -> (start, start within bounds)
        self._starts: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def prepare(self, task_ids: np.ndarray) -> None:
        """The starts of a batch at once (the farm calls this before evaluating the batch
        one task at a time)."""
        x0 = design_points(self.design, task_ids)
        inside = np.clip(x0, self.design.lower, self.design.upper)
        self._starts.update(zip(task_ids.tolist(), zip(x0, inside)))

    def inputs(self, task: Task) -> dict:
        start = self._starts.get(task.task_id)
        return {"x0": self.design.point(task.task_id) if start is None else start[0]}

    def evaluate(self, task: Task, report) -> Outcome:
        start = self._starts.pop(task.task_id, None)
        if start is not None and self.cfg.local_method == "none":
            x0 = start[0]       # refine(..., "none") without its per-call conversions
            res = self.evaluate_only(self.problem, start[1])
        else:
            x0 = self.design.point(task.task_id) if start is None else start[0]
            res = self.refine(self.problem, x0, self.design.lower, self.design.upper,
                              self.cfg.local_method, max_nfev=self.cfg.max_nfev,
                              options=self.cfg.local_options)
        values = {"x0": x0, "x": res.x, "objective": res.chi2, "n_eval": res.nfev,
                  "chi2_reduced": reduced(res.chi2, self.problem, self.design)}
        if res.status == "ok":
            return Outcome(schema.OK, values, "")
        return Outcome(schema.FAILED, values, res.message)

    def evaluate_many(self, task_ids: np.ndarray) -> ManyOutcome | None:
        """Method "none": the starts of many tasks in one loop, rows as columns (the farm's
        fast path for cheap objectives); the same values as evaluate() one by one."""
        if self.cfg.local_method != "none":
            return None
        if self._starts:                # starts prepared before (a retry path): not needed
            for tid in task_ids.tolist():
                self._starts.pop(tid, None)
        x0 = design_points(self.design, task_ids)
        inside = np.clip(x0, self.design.lower, self.design.upper)
        chi2: list[float] = []
        times = [time.time()]           # task i ran from times[i] to times[i + 1]
        messages: dict[int, str] = {}
        problem, start_chi2, error = self.problem, self.start_chi2, None
        points = inside.tolist() if getattr(problem, "takes_float_lists", False) else inside
        with np.errstate(all="ignore"):
            for i, x in enumerate(points):
                try:
                    value, why = start_chi2(problem, x)
                except BaseException as exc:  # noqa: BLE001 - the farm records it
                    error = exc
                    break
                chi2.append(value)
                times.append(time.time())
                if why:
                    messages[i] = why
        done = len(chi2)
        objective = np.array(chi2, dtype=float)
        times = np.array(times)
        status = np.where(np.isfinite(objective), schema.OK, schema.FAILED)
        values = {"x0": x0[:done], "x": inside[:done], "objective": objective,
                  "n_eval": np.ones(done, np.int32),
                  "chi2_reduced": reduced(objective, self.problem, self.design)}
        return ManyOutcome(done, status, values, messages, times[:-1], np.diff(times), error)


def design_points(design, task_ids: np.ndarray) -> np.ndarray:
    """design.point(i) for every i of `task_ids`, one points() call per run of consecutive ids."""
    ids = np.asarray(task_ids, dtype=np.int64)
    if len(ids) == 0:
        return np.zeros((0, len(design.param_names)))
    steps = np.diff(ids)
    if (steps == 1).all():                    # one run (the farm hands out runs)
        return design.points(int(ids[0]), int(ids[-1]) + 1)
    breaks = np.flatnonzero(steps != 1) + 1
    return np.concatenate([design.points(int(run[0]), int(run[-1]) + 1)
                           for run in np.split(ids, breaks)])


class SweepSource:
    """Rank 0: pending task ids in order; final rows go to the file, flushed promptly."""

    def __init__(self, store: ResultStore, dtype: np.dtype, pending: np.ndarray,
                 progress: Progress, flush_every: int):
        self.store, self.dtype, self.progress = store, dtype, progress
        self.pending = pending
        self.next_index = 0
        self.buffer: list[np.ndarray] = []
        self.n_buffered = 0
        self.flush_every = flush_every
        self.clock = FlushClock()

    def next_task(self) -> Task | None:
        if self.next_index >= len(self.pending):
            return None
        task = Task(int(self.pending[self.next_index]))
        self.next_index += 1
        return task

    def next_tasks(self, n: int) -> TaskBatch:
        """Up to n pending tasks at once (the farm asks for whole batches)."""
        ids = self.pending[self.next_index:self.next_index + n]
        self.next_index += len(ids)
        return TaskBatch(ids)

    def exhausted(self) -> bool:
        return self.next_index >= len(self.pending)

    def on_results(self, rows: np.ndarray) -> None:
        self.buffer.append(rows)
        self.n_buffered += len(rows)
        ok = rows["objective"][rows["status"] == schema.OK]
        self.progress.update(len(rows), float(ok.min()) if len(ok) else None)
        due = (self.n_buffered >= self.flush_every if self.flush_every
               else self.clock.due())
        if due:
            self.write()

    def on_report(self, task_id: int, step: int, value: float) -> bool:
        return False

    def tick(self) -> None:
        if self.buffer and self.clock.due():
            self.write()

    def write(self) -> None:
        if self.buffer:
            rows = concat_rows(self.buffer, self.dtype)
            self.buffer.clear()
            self.n_buffered = 0
            ids = rows["task_id"]
            lo, hi = int(ids.min()), int(ids.max()) + 1
            if len(rows) < hi - lo <= 4 * len(rows):
                # the chunks of interleaved workers: one read and one write of their span
                # instead of one write per run (h5py: ~1 ms each); rank 0 is the table's
                # only writer in dynamic mode, so the span holds nothing newer than the file
                block = self.store.read_rows(TABLE, lo, hi)
                block[ids - lo] = rows
                rows = block
            self.store.write_rows(TABLE, rows)
        self.store.flush()
        self.clock.wrote()


# ---------------------------------------------------------------------------------------
# the campaign

def chunk_size(cfg: SweepConfig, n_tasks: int, world_size: int) -> int:
    if cfg.run.chunk_size:
        return cfg.run.chunk_size
    if cfg.run.mode == "static":
        return max(1, min(1024, n_tasks // (4 * world_size) or 1))
    # dynamic: single starts balance expensive fits; cheap evaluations travel in chunks,
    # small enough that every worker gets several
    if cfg.local_method != "none":
        return 1
    return max(1, min(16, n_tasks // (4 * max(world_size - 1, 1))))


def run_sweep(session: Session) -> RunOutcome:
    """The sweep on every rank (the kind's run): the farm evaluates the pending starts."""
    from ..resources import apply_on_workers
    world, plan, store = session.world, session.plan, session.store
    cfg: SweepConfig = plan.config
    apply_on_workers(world, cfg.resources)
    problem, design = world.node_first(lambda: warmed_up(cfg))
    dtype = sweep_dtype(len(design.param_names))
    # warm starts are planned once on rank 0 (new campaign) or read back (resume)
    attrs, warm = world.bcast(warm_plan(cfg, problem, design, store, plan.resume)
                              if world.is_root else None)
    design = with_warm_starts(cfg, design, warm)
    n_tasks = design.n_tasks
    if not plan.resume:
        names = list(design.param_names)
        session.create(
            tables={TABLE: TableSpec(dtype, n_tasks, {
                "param_names": names,
                "lower": design.lower.tolist(), "upper": design.upper.tolist(),
                "model": cfg.model or "", "objective_function": cfg.objective or "",
                "search": cfg.search_method, "local": cfg.local_method},
                labels=sweep_labels(names), units=_point_units(problem, names))},
            attrs={**attrs, **getattr(problem, "result_attrs", {})},   # e.g. the XPCS convention
            arrays={} if warm is None else {"warm_starts": warm})
    else:
        store.extend_table(TABLE, n_tasks)       # more samples: the design goes on
    status_col = store.read_column(TABLE, "status")
    done = world.bcast(status_col != schema.PENDING if world.is_root else None)
    pending = np.flatnonzero(~done)
    if world.is_root and plan.resume:
        log.info(f"resuming {plan.paths.output}: {int(done.sum())} of {n_tasks} tasks "
                 "already done")
    isolated = plan.run.isolation == "process"
    # an isolated task is timed by its sandbox (which can kill it), not by SIGALRM
    options = FarmOptions(chunk_size=chunk_size(cfg, n_tasks, world.size),
                          max_retries=plan.run.max_retries,
                          task_timeout=None if isolated else plan.run.task_timeout,
                          hierarchy=plan.run.hierarchy)
    evaluator = _evaluator(plan, problem, design, warm)
    progress = session.start_progress(n_tasks, done=int(done.sum()), label="sweep")
    if plan.run.mode == "static":
        def write(rows):
            store.write_rows(TABLE, rows)
            store.flush()
        stats = run_static(world, n_tasks=n_tasks, done=done, evaluator=evaluator,
                           dtype=dtype, options=options, write_rows=write,
                           parallel_write=store.parallel, on_round=progress.update)
    else:
        source = SweepSource(store, dtype, pending, progress,
                             plan.run.checkpoint_every) if world.is_root else None
        stats = run_dynamic(world, source=source, evaluator=evaluator, dtype=dtype,
                            options=options)
        if source is not None:
            source.write()
    interrupted = world.any_flag(stats.interrupted)
    summary = world.bcast(summarize(store, problem, design) if world.is_root else None)
    status = "interrupted" if interrupted or summary["n_pending"] else "complete"
    return RunOutcome(status, summary, best=summary["best_attrs"] or None,
                      n_ok=summary["n_ok"], n_failed=summary["n_failed"],
                      first_error=summary["first_error"])


def _point_units(problem, names: list[str]) -> dict[str, str]:
    """Units of the x0_<name>, x_<name> columns, where the model knows them (XPCS)."""
    units = getattr(problem, "param_units", None) or {}
    return {labeled_column(field, n): units[n] for field in SWEEP_POINTS for n in names
            if units.get(n)}


def _evaluator(plan, problem, design: StartDesign, warm):
    if plan.run.isolation == "process":
        from ..sandbox import SandboxEvaluator
        spec = {"kind": plan.kind, "config": str(plan.file.path.resolve()),
                "output": str(plan.paths.output), "options": plan.options,
                "warm_starts": None if warm is None else np.asarray(warm).tolist()}
        return SandboxEvaluator(spec, inputs=lambda task: {"x0": design.point(task.task_id)},
                                timeout=plan.run.task_timeout)
    return SweepEvaluator(plan.config, problem, design)


def sandbox_evaluator(cfg: SweepConfig, spec: dict) -> SweepEvaluator:
    """The evaluator inside an isolated child process, from the rebuilt config."""
    problem = build_target(cfg)
    design = with_warm_starts(cfg, build_design(cfg, problem), spec.get("warm_starts"))
    return SweepEvaluator(cfg, problem, design)


def summarize(store: ResultStore, problem, design: StartDesign) -> dict:
    """Counts and the best row from the table (rank 0); uncertainties for model fits."""
    from ..store.reader import failure_groups, scan_table
    scan = scan_table(store.file[TABLE])
    groups = failure_groups(store.file[TABLE], limit=1)
    counts, best_row = scan["counts"], scan["best_row"]
    summary = {"n_tasks": sum(counts.values()), "n_ok": counts["ok"],
               "n_failed": counts["failed"] + counts["timeout"], "n_timeout": counts["timeout"],
               "n_pending": counts["pending"], "best": None, "best_attrs": {},
               "first_error": groups[0]["example"] if groups else ""}
    if best_row is None:
        return summary
    params = {nm: float(v) for nm, v in zip(design.param_names, best_row["x"])}
    best = {"params": params, "objective": float(best_row["objective"]),
            "task_id": int(best_row["task_id"])}
    attrs = dict(best, chi2_reduced=float(best_row["chi2_reduced"]))
    if problem.n_points:
        from .local import uncertainties
        free = design.lower < design.upper
        unc = uncertainties(problem, best_row["x"], free=free, chi2=float(best_row["objective"]))
        errs = {nm: float(e) for nm, e, f in zip(design.param_names, unc.stderr, free) if f}
        best.update(stderr=errs, chi2_reduced=float(best_row["chi2_reduced"]),
                    jacobian_singular=bool(unc.singular))
        attrs.update(stderr=errs, covariance=np.asarray(unc.covariance).tolist(),
                     jacobian_singular=bool(unc.singular))
    summary["best"] = best
    summary["best_attrs"] = attrs
    return summary


def format_summary(summary: dict) -> str:
    """The run summary, in the words of `hpcopt report` (report.text)."""
    timeout = summary.get("n_timeout", 0)
    counts = outcome_counts(summary["n_ok"], summary["n_failed"] - timeout, timeout,
                            summary["n_pending"])
    lines = [f"results: {summary['path']} ({summary['status']}; {counts} of "
             f"{summary['n_tasks']} tasks; {summary['elapsed']:.1f} s)"]
    best = summary["best"]
    if best is None:
        lines.append("best: none (no task finished successfully)")
        return "\n".join(lines)
    lines.append(f"best: objective {best['objective']:.10g} (task {best['task_id']})"
                 + (f", reduced chi2 {best['chi2_reduced']:.6g}" if "chi2_reduced" in best else ""))
    return "\n".join(lines + param_lines(best["params"], best.get("stderr"),
                                         singular=bool(best.get("jacobian_singular"))))
