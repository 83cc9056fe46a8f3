"""The sweep's tables ([model]/[data] or [objective], [parameters], [search], [local],
[warmstart], [resources]) as a frozen, validated :class:`SweepConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import bundled
from ..config import ConfigFile, RunConfig
from ..resources import Resources, parse_resources
from ..store.dtypes import sweep_name_problem
from ..tomlread import Table
from . import methods
from .starts import ParamSpec, param_spec_from_table, parse_parameter_ranges

LOCAL_METHODS = methods.METHODS
SEARCH_METHODS = ("grid", "random", "sobol", "lhs")
#: a grid larger than this is refused (ask for a sampled design instead)
MAX_TASKS = 50_000_000
#: the sweep's own tables (the lifecycle reads [output], [run] and [slurm])
SWEEP_TABLES = ("model", "data", "objective", "parameters", "search", "local", "warmstart",
                "resources")


@dataclass(frozen=True)
class SweepConfig:
    file: ConfigFile
    params: tuple[ParamSpec, ...]
    search_method: str
    samples: int
    local_method: str
    max_nfev: int | None
    run: RunConfig
    model: str | None = None           # "nist:Misra1a", "xpcs:homodyne", "pkg.mod:f"
    data_path: Path | None = None
    data_options: dict = field(default_factory=dict)
    objective: str | None = None       # "pkg.mod:f" for plain objective sweeps
    effective: dict = field(default_factory=dict)   # the canonical form (campaign.resume)
    parameter_ranges: str | None = None               # the --parameter-ranges override, if any
    resources: Resources = Resources()
    warmstart: object = None                          # hpcopt.warmstart.WarmStartConfig | None
    model_options: dict = field(default_factory=dict)  # [model] keys besides name (XPCS: mode, scaling)
    local_options: dict = field(default_factory=dict)  # scipy options of the local method

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def free(self) -> tuple[ParamSpec, ...]:
        return tuple(p for p in self.params if not p.fixed)

    @property
    def n_tasks(self) -> int:
        if self.search_method == "grid":
            n = 1
            for p in self.free:
                n *= p.points
            return n
        return self.samples


def parse_param_table(root: Table) -> tuple[ParamSpec, ...]:
    t = root.table("parameters")
    if not t.keys():
        raise root.error("at least one parameter is needed", "parameters")
    params = tuple(param_spec_from_table(name, t.raw(name), source=root.source)
                   for name in t.keys())
    t.finish()
    return params


def parse_local(loc: Table, *, fit: bool) -> tuple[str, int | None, dict]:
    """[local]: (canonical method, max_nfev or None, scipy options given).

    The method in hpcopt's or scipy's spelling, any case; scipy's option names for that
    method (sweep/methods.py); an option of another method is refused, naming it."""
    given = loc.str("method", "least_squares" if fit else "nelder-mead")
    try:
        method = methods.canonical_method(given)
    except ValueError as exc:
        raise loc.error(str(exc), "method") from None
    if not fit and method in methods.LEAST_SQUARES:
        raise loc.error(f"{given} needs a model with residuals; use nelder-mead, lbfgsb, "
                        "powell or none for a plain objective", "method")
    max_nfev = loc.raw("max_nfev", None)
    if max_nfev is not None:
        max_nfev = loc.int("max_nfev", min=1)
    options = {}
    for name in methods.OPTIONS[method]:      # read all, so finish() suggests among them
        value = loc.raw(name, None)
        if value is None or name == "max_nfev":
            continue
        problem = methods.option_problem(method, name, value)
        if problem:
            raise loc.error(problem, name)
        options[name] = value
    for name in loc.keys():      # an option of another method: name it (scipy only warns)
        if name in methods.ALL_OPTIONS - {"max_nfev"} and name not in methods.OPTIONS[method]:
            raise loc.error(methods.option_problem(method, name, loc.raw(name)), name)
    budget = methods.BUDGET.get(method)
    if max_nfev is not None and budget in options:
        raise loc.error(f"max_nfev and {budget} are the same budget for {given}: give one",
                        budget)
    loc.finish()
    return method, max_nfev, options


def parse_sweep_tables(root: Table, cf: ConfigFile, run: RunConfig, *,
                       parameter_ranges: str | None = None) -> SweepConfig:
    """Parse and validate the sweep's tables of `root` (data files are checked by the
    kind's plan, which builds the problem)."""
    model = data_path = objective = None
    data_options: dict = {}
    model_options: dict = {}
    if "objective" in root and "model" in root:
        raise root.error("give either [objective] (a function to minimise) or [model] + [data], "
                         "not both", "objective")
    if "objective" in root:
        t = root.table("objective")
        objective = t.str("function")
        t.finish()
    elif "model" in root:
        t = root.table("model")
        model = t.str("name")
        model_options = {k: t.raw(k) for k in t.keys() if k != "name"}  # checked by the model
        t.finish()
        d = root.table("data")
        try:        # {hpcopt_data}/NAME: a file bundled with hpcopt
            data_path = cf.resolve(bundled.expand(d.str("path")))
        except ValueError as exc:
            raise d.error(str(exc), "path") from None
        data_options = {k: d.raw(k) for k in d.keys() if k != "path"}
        d.finish()
    else:
        raise root.error("a sweep needs [objective] function = \"pkg.mod:f\" or [model] + [data]",
                         "objective")
    if parameter_ranges is not None:
        params = tuple(parse_parameter_ranges(parameter_ranges))
        root.raw("parameters", None)
    else:
        params = parse_param_table(root)
    s = root.table("search")
    method = s.str("method", "grid", choices=SEARCH_METHODS)
    samples = s.int("samples", 0 if method == "grid" else 64, min=0, max=MAX_TASKS)
    if method != "grid" and samples < 1:
        raise s.error(f"method = {method!r} needs samples >= 1", "samples")
    s.finish()
    local_method, max_nfev, local_options = parse_local(root.table("local"),
                                                        fit=objective is None)
    resources = parse_resources(root, cf.source) if "resources" in root else Resources()
    warmstart = None
    if "warmstart" in root:
        from ..warmstart.config import parse_warmstart
        warmstart = parse_warmstart(root.table("warmstart"), cf.source, cf.base_dir)
    # the canonical form (campaign.resume), keyed like the config's tables
    effective = {"model": {"name": model, **model_options}, "objective": {"function": objective},
                 "data": {"path": str(data_path) if data_path else None, **data_options},
                 "parameters": {p.name: {k: v for k, v in p.__dict__.items() if k != "name"}
                                for p in params},
                 "search": {"method": method, "samples": samples},
                 "local": {"method": local_method, "max_nfev": max_nfev, **local_options},
                 "warmstart": warmstart.effective() if warmstart else None}
    cfg = SweepConfig(cf, params, method, samples, local_method, max_nfev, run, model,
                      data_path, data_options, objective, effective, parameter_ranges, resources,
                      warmstart, model_options, local_options)
    if not cfg.free:
        raise root.error("every parameter is fixed: nothing to sweep", "parameters")
    clash = sweep_name_problem(cfg.param_names)    # columns of the table and Result.frame()
    if clash:
        raise root.error(clash, "parameters")
    if cfg.n_tasks > MAX_TASKS:
        raise root.error(f"the grid has {cfg.n_tasks:,} points (> {MAX_TASKS:,}); use fewer points "
                         "or method = \"sobol\" with samples = N", "parameters")
    return cfg
