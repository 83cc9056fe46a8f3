"""The ``[hpo]``, ``[objective]`` and ``[space]`` tables of an HPO config.

``[output]`` and ``[run]`` are parsed by the campaign code; it passes the output path
(the default storage lives next to it) to :func:`parse_hpo_config`.

    [hpo]
    sampler = "tpe"            # random | tpe | qmc | cmaes | gp
    pruner = "asha"            # asha | hyperband | median | none
    n_trials = 100             # global: array tasks sharing the study stop together
    time_budget = 3600         # seconds, this run
    max_concurrent = 8         # trials in flight per coordinator (default: all workers; random
                               # and qmc: up to three times, queued on each)
    direction = "minimize"
    deterministic = false      # fixed batch order: same params for the same seed
    study_name = "study"       # default: the output file's stem
    storage = "study.journal"  # journal file (default next to the output), an RDB URL, or "memory"
    trial_timeout = 600        # seconds per trial
    max_retries = 1            # re-run a failed trial with the same params
    multivariate = true        # TPE only
    constant_liar = true       # TPE only
    n_startup_trials = 10      # random trials before TPE/GP/CMA-ES model anything
    worker_sampling = true     # workers draw the next trials (default: tpe/gp, journal)
    min_resource = 1           # asha, hyperband ("auto" allowed)
    reduction_factor = 3       # asha, hyperband
    max_resource = "auto"      # hyperband
    min_early_stopping_rate = 0   # asha
    bootstrap_count = 0        # asha, hyperband
    n_warmup_steps = 0         # median
    interval_steps = 1         # median
    n_min_trials = 1           # median
    pruner_startup_trials = 5  # median: trials finished before it prunes

    [objective]
    function = "pkg.mod:g"     # g(params) or g(params, report)
    # or an external command, never run through a shell:
    command = ["{python}", "{config_dir}/train.py", "--lr={lr}", "--layers", "{layers}"]
    result_file = "result.json"       # written by the command into {trial_dir}
    result_key = "value"              # the number to optimize in it ("error" for seed-style files)
    progress_file = "progress.jsonl"  # optional lines {"step": s, "value": v}
    workdir = "trials"                # trial_<n> folders (default next to the output)
    env = { OMP_NUM_THREADS = "1" }
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..tomlread import Table
from .argv_template import check_template
from .pbt.config import OPTUNA_ONLY_KEYS, PbtSettings, parse_pbt_settings
from .space import SearchSpace, parse_space

SAMPLERS = ("random", "tpe", "qmc", "cmaes", "gp")
PRUNERS = ("asha", "hyperband", "median", "none")
SCHEDULERS = ("optuna", "pbt")   # pbt: population-based training, see pbt_config.py

# pruner option -> (pruners that use it, default)
_PRUNER_OPTIONS: dict[str, tuple[tuple[str, ...], Any]] = {
    "min_resource": (("asha", "hyperband"), None),   # None: asha "auto", hyperband 1
    "reduction_factor": (("asha", "hyperband"), None),  # None: asha 4, hyperband 3 (Optuna's)
    "max_resource": (("hyperband",), "auto"),
    "min_early_stopping_rate": (("asha",), 0),
    "bootstrap_count": (("asha", "hyperband"), 0),
    "n_warmup_steps": (("median",), 0),
    "interval_steps": (("median",), 1),
    "n_min_trials": (("median",), 1),
    "pruner_startup_trials": (("median",), 5),
}


@dataclass(frozen=True)
class StorageSpec:
    """Where the Optuna study lives: ``kind`` is "journal" (path), "rdb" (url) or "memory"."""

    kind: str
    location: str = ""


@dataclass(frozen=True)
class HpoSettings:
    """The validated ``[hpo]`` table."""

    sampler: str = "tpe"
    pruner: str = "none"
    n_trials: int = 100
    time_budget: float | None = None
    max_concurrent: int | None = None
    direction: str = "minimize"
    deterministic: bool = False
    study_name: str = "hpcopt"
    storage: StorageSpec = StorageSpec("memory")
    trial_timeout: float | None = None
    max_retries: int = 0
    multivariate: bool = True
    constant_liar: bool = True
    n_startup_trials: int = 10
    worker_sampling: bool | None = None   # None: on for tpe/gp with a journal (policy.py)
    pruner_options: tuple[tuple[str, Any], ...] = ()
    scheduler: str = "optuna"
    pbt: PbtSettings | None = None   # set when scheduler == "pbt"

    def pruner_option(self, name: str) -> Any:
        return dict(self.pruner_options).get(name, _PRUNER_OPTIONS[name][1])


@dataclass(frozen=True)
class ObjectiveConfig:
    """The validated ``[objective]`` table: a Python callable or an external command."""

    function: str | None = None
    command: tuple[str, ...] | None = None
    result_file: str = "result.json"
    result_key: str = "value"
    progress_file: str = "progress.jsonl"
    workdir: Path | None = None
    env: tuple[tuple[str, str], ...] = ()
    config_dir: Path | None = None   # fills {config_dir} in the command


@dataclass(frozen=True)
class HpoConfig:
    """Everything an HPO campaign needs besides ``[output]`` and ``[run]``."""

    hpo: HpoSettings
    objective: ObjectiveConfig
    space: SearchSpace
    source: str
    base_dir: Path


def parse_hpo_config(root: Table, source: str, base_dir: str | Path,
                     output_path: str | Path | None = None) -> HpoConfig:
    """Parse ``[hpo]``, ``[objective]`` and ``[space]`` of `root` (the whole config's Table).

    `output_path` is the campaign's result file: it gives the default study name and the
    default journal path (``<output>.journal``) and trial folder (``<output stem>_trials``).
    Relative paths in the config are taken from `base_dir`. Raises ConfigError.
    """
    base_dir = Path(base_dir)
    out = Path(output_path) if output_path is not None else None
    if out is not None and not out.is_absolute():
        out = base_dir / out
    space = parse_space(root.table("space"))
    hpo = _parse_hpo(root.table("hpo"), base_dir, out)
    objective = _parse_objective(root.table("objective"), base_dir, out, space)
    if hpo.scheduler == "pbt" and objective.command is not None:
        raise root.error("scheduler = 'pbt' needs 'function' (f(params, ctx), see docs/pbt.md)",
                         "objective.command")
    return HpoConfig(hpo, objective, space, source, base_dir)


def _parse_hpo(t: Table, base_dir: Path, out: Path | None) -> HpoSettings:
    sampler = t.str("sampler", "tpe", choices=SAMPLERS)
    pruner = t.str("pruner", "none", choices=PRUNERS)
    if "timeout" in t and "time_budget" in t:
        raise t.error("give time_budget or its Optuna name timeout, not both", "timeout")
    # Optuna's study.optimize(timeout=...) is the same budget: its name is accepted too
    time_budget = t.float("timeout" if "timeout" in t else "time_budget", None, positive=True)
    trial_timeout = t.float("trial_timeout", None, positive=True)
    settings = dict(
        sampler=sampler, pruner=pruner,
        n_trials=t.int("n_trials", 100, min=1),
        time_budget=time_budget,
        max_concurrent=t.int("max_concurrent", None, min=1),
        direction=t.str("direction", "minimize", choices=("minimize", "maximize")),
        deterministic=t.bool("deterministic", False),
        study_name=t.str("study_name", out.stem if out is not None else "hpcopt"),
        storage=_parse_storage(t, base_dir, out),
        trial_timeout=trial_timeout,
        max_retries=t.int("max_retries", 0, min=0),
        n_startup_trials=t.int("n_startup_trials", 10, min=0),
        worker_sampling=t.bool("worker_sampling", None) if "worker_sampling" in t else None,
    )
    for name in ("multivariate", "constant_liar"):
        if name in t and sampler != "tpe":
            raise t.error("only used with sampler = 'tpe'", name)
        settings[name] = t.bool(name, True)
    if not settings["study_name"]:
        raise t.error("expected a non-empty string", "study_name")
    options = []
    for name, (users, _default) in _PRUNER_OPTIONS.items():
        if name not in t:
            continue
        if pruner not in users:
            raise t.error(f"only used with pruner = {' or '.join(map(repr, users))}", name)
        options.append((name, _pruner_value(t, name)))
    scheduler, pbt = _parse_scheduler(t, base_dir, out)
    t.finish()
    return HpoSettings(**settings, pruner_options=tuple(options), scheduler=scheduler, pbt=pbt)


def _parse_scheduler(t: Table, base_dir: Path, out: Path | None):
    scheduler = t.str("scheduler", "optuna", choices=SCHEDULERS)
    if scheduler != "pbt":
        if "pbt" in t:
            raise t.error("only used with scheduler = 'pbt'", "pbt")
        return scheduler, None
    for name in OPTUNA_ONLY_KEYS:
        if name in t:
            raise t.error("not used with scheduler = 'pbt' (the budget is population * "
                          "max_steps, see [hpo.pbt])", name)
    return scheduler, parse_pbt_settings(t.table("pbt", {}), base_dir, out)


def _pruner_value(t: Table, name: str) -> Any:
    if name in ("min_resource", "max_resource") and t.raw(name) == "auto":
        return "auto"
    if name == "reduction_factor":
        return t.int(name, min=2)
    if name in ("min_resource", "max_resource", "interval_steps", "n_min_trials"):
        return t.int(name, min=1)
    return t.int(name, min=0)


def _parse_storage(t: Table, base_dir: Path, out: Path | None) -> StorageSpec:
    default = str(out.with_name(out.name + ".journal")) if out is not None else "memory"
    text = t.str("storage", default)
    try:
        return storage_spec(text, base_dir)
    except ValueError as exc:
        raise t.error(str(exc), "storage") from None


def storage_spec(text: str, base_dir: Path) -> StorageSpec:
    """A storage named as in ``[hpo] storage`` or ``--storage``: "memory", a database URL,
    or a journal file path (relative to `base_dir`). Raises ValueError."""
    if text == "memory":
        return StorageSpec("memory")
    if "://" in text:
        scheme = text.split("://", 1)[0]
        if not scheme.replace("+", "").replace("_", "").isalnum():
            raise ValueError(f"not a database URL: {text!r}")
        return StorageSpec("rdb", text)
    if not text:
        raise ValueError("expected a journal file path, a database URL or 'memory'")
    path = Path(text).expanduser()
    return StorageSpec("journal", str(path if path.is_absolute() else base_dir / path))


def _parse_objective(t: Table, base_dir: Path, out: Path | None,
                     space: SearchSpace) -> ObjectiveConfig:
    if ("function" in t) == ("command" in t):
        raise t.error("give exactly one of 'function' or 'command'")
    if "function" in t:
        function = t.str("function")
        t.finish()
        return ObjectiveConfig(function=function)
    command = t.raw("command")
    if (not isinstance(command, list) or not command
            or not all(isinstance(a, str) for a in command)):
        raise t.error("expected a non-empty list of strings (argv; no shell)", "command")
    for i, item in enumerate(command):
        problem = check_template(item, space.names)
        if problem:
            raise t.error(problem, f"command[{i}]")
    default_workdir = out.with_name(out.stem + "_trials") if out is not None else None
    workdir = t.str("workdir", None)
    env = t.table("env", {})
    env_items = tuple((k, env.str(k)) for k in env.keys())
    env.finish()
    cfg = ObjectiveConfig(
        command=tuple(command),
        result_file=_plain_name(t, "result_file", "result.json"),
        result_key=t.str("result_key", "value"),
        progress_file=_plain_name(t, "progress_file", "progress.jsonl"),
        workdir=(base_dir / workdir) if workdir else default_workdir,
        env=env_items,
        config_dir=base_dir,
    )
    t.finish()
    return cfg


def _plain_name(t: Table, name: str, default: str) -> str:
    value = t.str(name, default)
    if not value or "/" in value or value in (".", ".."):
        raise t.error("expected a plain file name (written inside the trial folder)", name)
    return value
