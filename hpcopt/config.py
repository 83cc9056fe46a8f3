"""Campaign configs: TOML -> frozen dataclasses, validated completely on rank 0.

Common tables ([output], [run], [slurm]) live here; each campaign kind parses
its own tables (sweep here, temper in hpcopt.temper.config, hpo in
hpcopt.hpo.config).  Unknown tables and keys are errors; relative paths are
taken from the config file's directory (DESIGN.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .farm.tree import HIERARCHIES
from .resources import Resources, parse_resources
from .sweep.starts import ParamSpec, param_spec_from_table, parse_parameter_ranges
from .tomlread import Table, load_toml

LOCAL_METHODS = ("least_squares", "nelder-mead", "lbfgsb", "powell", "none")
SEARCH_METHODS = ("grid", "random", "sobol", "lhs")
FARM_MODES = ("dynamic", "static")
ISOLATION = ("none", "process")
#: a grid larger than this is refused (ask for a sampled design instead)
MAX_TASKS = 50_000_000


@dataclass(frozen=True)
class OutputConfig:
    path: Path


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0
    checkpoint_every: int = 0          # tasks (sweep/hpo) or exchange rounds (temper); 0 = default
    mode: str = "dynamic"              # task farm mode of sweeps
    chunk_size: int = 0                # tasks per message; 0 = automatic
    max_retries: int = 0
    task_timeout: float | None = None  # seconds per task attempt
    isolation: str = "none"            # "process": each worker evaluates in a child process
    hierarchy: str = "auto"            # dynamic sweeps: "nodes" puts a sub-coordinator per node


@dataclass(frozen=True)
class ConfigFile:
    """Where a config came from: for messages, relative paths and the stored record."""

    path: Path
    text: str

    @property
    def source(self) -> str:
        return str(self.path)

    @property
    def base_dir(self) -> Path:
        return self.path.resolve().parent

    def resolve(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p


def config_hash(effective: dict) -> str:
    """Hash of the effective config (after command-line overrides), to match --resume files."""
    blob = json.dumps(effective, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def open_config(path: str | Path) -> tuple[Table, ConfigFile]:
    data, text = load_toml(path)
    cf = ConfigFile(Path(path), text)
    return Table(data, "", cf.source), cf


def parse_output(root: Table, cf: ConfigFile, default_name: str) -> OutputConfig:
    t = root.table("output")
    path = t.str("path", default_name)
    if not path.strip():
        raise t.error("expected a file path, got an empty string", "path")
    t.finish()
    return OutputConfig(cf.resolve(path))


def parse_run(root: Table) -> RunConfig:
    t = root.table("run")
    timeout = t.raw("task_timeout", None)
    if timeout is not None:
        timeout = t.float("task_timeout", positive=True)
    run = RunConfig(
        seed=t.int("seed", 0, min=0, max=2**63 - 1),
        checkpoint_every=t.int("checkpoint_every", 0, min=0),
        mode=t.str("mode", "dynamic", choices=FARM_MODES),
        chunk_size=t.int("chunk_size", 0, min=0, max=1_000_000),
        max_retries=t.int("max_retries", 0, min=0, max=100),
        task_timeout=timeout,
        isolation=t.str("isolation", "none", choices=ISOLATION),
        hierarchy=t.str("hierarchy", "auto", choices=HIERARCHIES),
    )
    t.finish()
    return run


def check_tables(root: Table, allowed: tuple[str, ...], kind: str) -> None:
    unknown = [k for k in root.keys() if k not in allowed]
    if unknown:
        raise root.error(f"unknown table{'s' if len(unknown) > 1 else ''} for a {kind} config: "
                         f"{', '.join(unknown)} (allowed: {', '.join(allowed)})", unknown[0])


# ---------------------------------------------------------------------------------------
# sweep

@dataclass(frozen=True)
class SweepConfig:
    file: ConfigFile
    params: tuple[ParamSpec, ...]
    search_method: str
    samples: int
    local_method: str
    max_nfev: int | None
    output: OutputConfig
    run: RunConfig
    model: str | None = None           # "nist:Misra1a", "xpcs:homodyne", "pkg.mod:f"
    data_path: Path | None = None
    data_options: dict = field(default_factory=dict)
    objective: str | None = None       # "pkg.mod:f" for plain objective sweeps
    effective: dict = field(default_factory=dict)   # what the config hash covers
    parameter_ranges: str | None = None               # the --parameter-ranges override, if any
    resources: Resources = Resources()
    warmstart: object = None                          # hpcopt.warmstart.WarmStartConfig | None

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

    @property
    def hash(self) -> str:
        return config_hash(self.effective)


SWEEP_TABLES = ("model", "data", "objective", "parameters", "search", "local", "output", "run",
                "slurm", "warmstart", "resources")


def parse_param_table(root: Table) -> tuple[ParamSpec, ...]:
    t = root.table("parameters")
    if not t.keys():
        raise root.error("at least one parameter is needed", "parameters")
    params = tuple(param_spec_from_table(name, t.raw(name), source=root.source)
                   for name in t.keys())
    t.finish()
    return params


def parse_sweep_config(path: str | Path, *, parameter_ranges: str | None = None,
                       output: str | None = None) -> SweepConfig:
    """Parse and validate a sweep config (data files are checked by the sweep itself)."""
    root, cf = open_config(path)
    check_tables(root, SWEEP_TABLES, "sweep")
    model = data_path = objective = None
    data_options: dict = {}
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
        t.finish()
        d = root.table("data")
        data_path = cf.resolve(d.str("path"))
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
    loc = root.table("local")
    local_method = loc.str("method", "least_squares" if model else "nelder-mead",
                           choices=LOCAL_METHODS)
    max_nfev = loc.raw("max_nfev", None)
    if max_nfev is not None:
        max_nfev = loc.int("max_nfev", min=1)
    loc.finish()
    if objective is not None and local_method == "least_squares":
        raise loc.error("least_squares needs a model with residuals; use nelder-mead, lbfgsb, "
                        "powell or none for a plain objective", "method")
    out = parse_output(root, cf, Path(cf.path).stem + ".h5")
    if output is not None:
        out = OutputConfig(Path(output))
    run = parse_run(root)
    if "slurm" in root:
        from .slurm import parse_slurm_config
        parse_slurm_config(root, cf.source)
    resources = parse_resources(root, cf.source) if "resources" in root else Resources()
    warmstart = None
    if "warmstart" in root:
        from .warmstart import parse_warmstart
        warmstart = parse_warmstart(root.table("warmstart"), cf.source, cf.base_dir)
    root.finish()
    effective = {"model": model, "data": str(data_path) if data_path else None,
                 "data_options": data_options, "objective": objective,
                 "params": [p.__dict__ for p in params], "search": [method, samples],
                 "local": [local_method, max_nfev], "seed": run.seed,
                 "warmstart": warmstart.effective() if warmstart else None}
    cfg = SweepConfig(cf, params, method, samples, local_method, max_nfev, out, run, model,
                      data_path, data_options, objective, effective, parameter_ranges, resources,
                      warmstart)
    if not cfg.free:
        raise root.error("every parameter is fixed: nothing to sweep", "parameters")
    if cfg.n_tasks > MAX_TASKS:
        raise root.error(f"the grid has {cfg.n_tasks:,} points (> {MAX_TASKS:,}); use fewer points "
                         "or method = \"sobol\" with samples = N", "parameters")
    return cfg
