"""SLURM side of hpcopt: the [slurm] config table, jobs/ templates, `hpcopt submit`.

A template in jobs/ is a bash batch script with ``{{name}}`` placeholders (a syntax bash
never uses, so the script's own ``${VAR}`` stay as they are).  :func:`render` fills them
from a validated :class:`SlurmConfig`: every value that lands in a shell word is quoted
with :func:`shlex.quote`, every value in an ``#SBATCH`` line is checked and quoted the way
sbatch reads directives (double quotes, backslash escapes).  The one exception is
``env_setup``: the user's own shell lines (``module load ...``, ``source venv/bin/activate``),
inserted verbatim like any line of a batch script they would write themselves.

:func:`submit` is ``hpcopt submit CONFIG --template NAME [--dry-run]``.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import ConfigError, UsageError
from .resources import Resources, parse_resources
from .tomlread import Table, load_toml

TEMPLATES = ("single", "mpirun", "array")
COMMANDS = ("sweep", "temper", "hpo")
#: what starts the ranks of the job step: SLURM (srun), the MPICH bundled with the Python
#: that renders the script (the venv's mpirun), or the `mpirun` that env_setup puts on PATH
LAUNCHERS = ("srun", "bundled", "module")
#: a template's launcher when [slurm] launcher is not given (others: srun)
DEFAULT_LAUNCHER = {"mpirun": "bundled"}
#: exit status of an hpcopt campaign stopped by SIGTERM/SIGUSR1 after checkpointing
INTERRUPTED_EXIT = 3
#: SLURM's limit for --signal=...@seconds
MAX_SIGNAL_LEAD = 65535

_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
_NAME_WORD = re.compile(r"^[A-Za-z0-9_.,:+-]+$")            # partition, account, qos
_MEM = re.compile(r"^[1-9][0-9]*[KMGTkmgt]?$")
_TIME = re.compile(r"^(?:(?P<d>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?"
                   r"|(?P<a>\d+)(?::(?P<b>\d+)(?::(?P<c>\d+))?)?)$")
_OPTION = re.compile(r"^--[A-Za-z][A-Za-z0-9-]*$")
_SAFE_DIRECTIVE = re.compile(r"^[A-Za-z0-9_.,:/%@+=-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SlurmConfig:
    """The validated [slurm] table of a campaign config (None: leave it to SLURM)."""

    source: str = ""
    partition: str | None = None
    time: str | None = None                  # as written ("4:00:00", "1-12", "30")
    time_seconds: int | None = None          # None: unlimited or the partition default
    mem: str | None = None                   # "16G", "4000" (MB)
    cpus_per_task: int | None = None
    ntasks: int = 1
    nodes: int | None = None
    gpus: int = 0                            # GPUs per node (gpus_per_node): --gres=gpu:N
    env_setup: tuple[str, ...] = ()          # shell lines, verbatim
    array: int | None = None                 # array size N: --array=0-(N-1)
    max_concurrent: int | None = None        # array throttle: %M
    signal_lead: int = 120                   # --signal=B:USR1@signal_lead
    account: str | None = None
    qos: str | None = None
    extra_sbatch: tuple[str, ...] = ()       # "--mail-type=END", "--exclusive", ...
    hpcopt: tuple[str, ...] | None = None    # None: this Python -m hpcopt
    mpirun: tuple[str, ...] | None = None    # launcher "module": the command (default mpirun)
    mpi: str = "pmi2"                        # srun --mpi=...; "" leaves SLURM's MpiDefault
    launcher: str | None = None              # None: the template's (DEFAULT_LAUNCHER)
    job_name: str | None = None
    max_requeue: int = 0                     # requeue itself after a time-limit stop, N times


# -- [slurm] table -------------------------------------------------------------------------

def parse_slurm_config(root: Table | dict, source: str | None = None) -> SlurmConfig:
    """Validate the [slurm] table of a whole config (`root`); missing table: defaults.

    Raises ConfigError naming ``slurm.KEY`` and the file for any bad or unknown key.
    """
    if not isinstance(root, Table):
        root = Table(root, "", source or "")
    source = source or root.source
    t = root.table("slurm")
    time_text, time_seconds = _parse_time(t)
    mem = t.raw("mem", None)
    if mem is not None:
        if isinstance(mem, int) and not isinstance(mem, bool) and mem > 0:
            mem = str(mem)
        elif not (isinstance(mem, str) and _MEM.match(mem)):
            raise t.error(f"expected a memory size such as 16G, 500M or 4000 (MB), got {mem!r}",
                          "mem")
    array = t.int("array", None, min=1, max=1_000_000)
    max_concurrent = t.int("max_concurrent", None, min=1)
    signal_lead = t.int("signal_lead", 120, min=1, max=MAX_SIGNAL_LEAD)
    if time_seconds is not None and signal_lead >= time_seconds:
        raise t.error(f"the signal lead ({signal_lead} s) must be shorter than the time limit "
                      f"(time = {time_text!r} is {time_seconds} s)", "signal_lead")
    mpi = t.str("mpi", "pmi2")
    if mpi and not re.fullmatch(r"[a-z0-9_]+", mpi):
        raise t.error(f"expected an srun --mpi type such as pmi2, pmix or none, got {mpi!r}",
                      "mpi")
    launcher = t.str("launcher", None, choices=LAUNCHERS)
    mpirun = _command_words(t, "mpirun")
    if mpirun is not None:
        if launcher in ("srun", "bundled"):
            raise t.error(f"the mpirun command is for launcher = 'module' (the site's MPI); "
                          f"launcher = {launcher!r} does not use it", "mpirun")
        launcher = "module"
    if "gpus" in t and "gpus_per_node" in t:
        raise t.error("give gpus_per_node or its short form gpus, not both", "gpus")
    gpus_key = "gpus_per_node" if "gpus_per_node" in t else "gpus"
    cfg = SlurmConfig(
        source=source,
        partition=_name_word(t, "partition"),
        time=time_text,
        time_seconds=time_seconds,
        mem=mem,
        cpus_per_task=t.int("cpus_per_task", None, min=1, max=100_000),
        ntasks=t.int("ntasks", 1, min=1, max=10_000_000),
        nodes=t.int("nodes", None, min=1, max=1_000_000),
        gpus=t.int(gpus_key, 0, min=0, max=1024),
        env_setup=_lines(t, "env_setup"),
        array=array,
        max_concurrent=max_concurrent,
        signal_lead=signal_lead,
        account=_name_word(t, "account"),
        qos=_name_word(t, "qos"),
        extra_sbatch=_extra_sbatch(t),
        hpcopt=_command_words(t, "hpcopt"),
        mpirun=mpirun,
        mpi=mpi,
        launcher=launcher,
        job_name=_text(t, "job_name"),
        max_requeue=t.int("max_requeue", 0, min=0, max=1000),
    )
    t.finish()
    return cfg


def _parse_time(t: Table) -> tuple[str | None, int | None]:
    value = t.raw("time", None)
    if value is None:
        return None, None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value), value * 60            # SLURM: a bare number is minutes
    if isinstance(value, str):
        if value.upper() in ("UNLIMITED", "INFINITE"):
            return value.upper(), None
        m = _TIME.match(value)
        if m:
            g = {k: int(v) for k, v in m.groupdict().items() if v is not None}
            if "d" in g:
                seconds = ((g["d"] * 24 + g["dh"]) * 60 + g.get("dm", 0)) * 60 + g.get("ds", 0)
            elif "c" in g:                           # hours:minutes:seconds
                seconds = (g["a"] * 60 + g["b"]) * 60 + g["c"]
            else:                                    # minutes[:seconds]
                seconds = g["a"] * 60 + g.get("b", 0)
            if seconds > 0:
                return value, seconds
    raise t.error("expected a SLURM time limit: minutes (30), \"MM:SS\", \"HH:MM:SS\", "
                  f"\"D-HH\", \"D-HH:MM[:SS]\" or \"UNLIMITED\", got {value!r}", "time")


def _name_word(t: Table, name: str) -> str | None:
    value = t.str(name, None)
    if value is not None and not _NAME_WORD.match(value):
        raise t.error(f"expected a SLURM name (letters, digits, . _ , : + -), got {value!r}", name)
    return value


def _text(t: Table, name: str) -> str | None:
    value = t.str(name, None)
    if value is not None and (not value.strip() or _CONTROL.search(value)):
        raise t.error(f"expected a non-empty single-line string, got {value!r}", name)
    return value


def _lines(t: Table, name: str) -> tuple[str, ...]:
    value = t.raw(name, None)
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    lines: list[str] = []
    for i, item in enumerate(items):
        key = name if item is value else f"{name}[{i}]"
        if not isinstance(item, str):
            raise t.error(f"expected a shell line or a list of shell lines, got {item!r}", key)
        if "\x00" in item:
            raise t.error("a shell line cannot hold a NUL character", key)
        lines.extend(item.splitlines())
    return tuple(lines)


def _extra_sbatch(t: Table) -> tuple[str, ...]:
    value = t.raw("extra_sbatch", [])
    if not isinstance(value, list):
        raise t.error(f"expected a list of sbatch options such as [\"--mail-type=END\"], "
                      f"got {value!r}", "extra_sbatch")
    options = []
    for i, item in enumerate(value):
        key = f"extra_sbatch[{i}]"
        if not isinstance(item, str) or _CONTROL.search(item):
            raise t.error(f"expected a single-line string, got {item!r}", key)
        name, eq, arg = item.partition("=")
        if not _OPTION.match(name):
            raise t.error(f"expected a long sbatch option '--name' or '--name=value', got {item!r}",
                          key)
        options.append(f"{name}={_directive_value(arg)}" if eq else name)
    return tuple(options)


def _command_words(t: Table, name: str) -> tuple[str, ...] | None:
    value = t.raw(name, None)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise t.error(f"cannot split {value!r} into words: {exc}", name) from None
    elif isinstance(value, list) and all(isinstance(w, str) for w in value):
        words = list(value)
    else:
        raise t.error(f"expected a command (a string or a list of strings), got {value!r}", name)
    if not words or any(not w or "\x00" in w for w in words):
        raise t.error(f"expected a non-empty command, got {value!r}", name)
    return tuple(words)


# -- rendering ---------------------------------------------------------------------------

def template_dirs() -> list[Path]:
    """Where named templates are looked up: package data first, then the repository's jobs/."""
    here = Path(__file__).resolve().parent
    return [here / "templates" / "jobs", here.parent / "jobs"]


def find_template(name: str) -> Path:
    """The template file for NAME (single | mpirun | array) or a path to a user template."""
    if "/" in name or name.endswith(".sbatch"):
        path = Path(name).expanduser()
        if path.is_file():
            return path
        raise UsageError(f"template file not found: {name}")
    for d in template_dirs():
        path = d / f"{name}.sbatch"
        if path.is_file():
            return path
    raise UsageError(f"unknown template {name!r}: expected one of {', '.join(TEMPLATES)} "
                     f"or a path to a .sbatch template")


def default_hpcopt() -> tuple[str, ...]:
    """The hpcopt that renders the template: this Python (absolute, venv kept) -m hpcopt."""
    return (os.path.abspath(sys.executable), "-m", "hpcopt")


def bundled_mpirun() -> Path:
    """The mpirun next to this Python: the venv's MPICH (the PyPI wheel), mpi4py's MPI."""
    return Path(os.path.abspath(sys.executable)).parent / "mpirun"


def bundled_mpich() -> str | None:
    """The version of the MPICH wheel in this Python's environment, which mpi4py loads
    before any other libmpi (it looks in the environment's lib/ first), or None."""
    try:
        version = importlib.metadata.version("mpich")
    except importlib.metadata.PackageNotFoundError:
        return None
    return version if bundled_mpirun().exists() else None


def uses_array(template_path: Path) -> bool:
    """Whether a template is an array job (it has an ``{{array_spec}}`` placeholder)."""
    return "array_spec" in _PLACEHOLDER.findall(template_path.read_text(encoding="utf-8"))


def template_launcher(template_path: Path, cfg: SlurmConfig) -> str:
    """The launcher a template runs with: [slurm] launcher, else the template's default."""
    launcher = cfg.launcher or DEFAULT_LAUNCHER.get(template_path.stem, "srun")
    if template_path.stem == "mpirun" and launcher == "srun":
        raise ConfigError("the mpirun template starts the ranks with an mpirun and a hostfile; "
                          "launcher = 'srun' is --template single", key="slurm.launcher",
                          source=cfg.source)
    return launcher


def render(template_name: str, config_path: str | Path, slurm_cfg: SlurmConfig, command: str,
           output_path: str | Path, *, threads: int | None = None,
           study: str | None = None) -> str:
    """The batch script of template `template_name` for one campaign config.

    `command` is the hpcopt subcommand (sweep | temper | hpo); `output_path` the result file
    (for the array template, the base name of the per-task files ``NAME.taskI.SUFFIX``);
    `threads` the config's [resources] threads; `study` the HPO study, as the header names it.
    """
    if command not in COMMANDS:
        raise UsageError(f"unknown campaign command {command!r}: expected one of "
                         f"{', '.join(COMMANDS)}")
    template_path = find_template(template_name)
    text = template_path.read_text(encoding="utf-8")
    config_path = _checked_path(config_path, "config file")
    output_path = _checked_path(output_path, "result file")
    is_array = uses_array(template_path)
    if is_array:
        if slurm_cfg.array is None:
            raise ConfigError(f"the {template_name!r} template needs the array size, "
                              "e.g. array = 8 (and max_concurrent = 2 to run at most 2 at once)",
                              key="slurm.array", source=slurm_cfg.source)
        if command != "hpo":
            raise UsageError(f"the {template_name!r} template runs HPO array tasks that join one "
                             f"study; a {command} campaign runs in one allocation: use "
                             f"--template single or --template mpirun")
    launcher = template_launcher(template_path, slurm_cfg)
    values = _values(template_path.stem, config_path, slurm_cfg, command, output_path, is_array)
    values.update(_launch_values(launcher, slurm_cfg), study=study or "the [hpo] study",
                  thread_setup=_thread_setup(threads))
    for placeholder, fragment in (("launch_setup", f"launch-{_LAUNCH_FRAGMENT[launcher]}.bash"),
                                  ("signal_handling", "signals.bash")):
        path = _shared_fragment(fragment)
        values[placeholder] = _substitute(path.read_text(encoding="utf-8"), values, str(path))
    return _substitute(text, values, str(template_path))


#: the jobs/launch-*.bash fragment of each launcher
_LAUNCH_FRAGMENT = {"srun": "srun", "bundled": "mpirun", "module": "mpirun"}


def _launch_values(launcher: str, cfg: SlurmConfig) -> dict[str, str]:
    """Placeholders of the launch fragment and the header line that describes it."""
    srun_options = _words([f"--mpi={cfg.mpi}"] if cfg.mpi else [])
    if launcher == "srun":
        pmi = f"PMI type {cfg.mpi}" if cfg.mpi else "the cluster's MpiDefault PMI"
        summary = (f"srun {srun_options + ' ' if srun_options else ''}--kill-on-bad-exit=1: "
                   f"SLURM starts the ranks ({pmi}); a rank that dies ends the step")
        return {"launcher": launcher, "launch_summary": summary, "srun_options": srun_options,
                "mpirun": _words(cfg.mpirun or ("mpirun",)), "mpirun_missing_hint": ""}
    if launcher == "bundled":
        mpirun = (str(bundled_mpirun()),)
        where = "the MPICH next to the Python that rendered this script (its mpi4py's MPI)"
        missing = "; hpcopt's Python has no bundled MPICH (pip install mpich)"
    else:
        mpirun = cfg.mpirun or ("mpirun",)
        where = "the site's MPI, as env_setup put it on PATH"
        missing = " on PATH after env_setup (load the site's MPI module there)"
    summary = (f"{_words(mpirun)} -f/--hostfile HOSTFILE -n $SLURM_NTASKS: {where}; the "
               f"hostfile lists the allocation's nodes")
    return {"launcher": launcher, "launch_summary": summary, "srun_options": srun_options,
            "mpirun": _words(mpirun), "mpirun_missing_hint": missing}


def _thread_setup(threads: int | None) -> str:
    """Thread pools of every rank: [resources] threads, else what SLURM gives a task."""
    if threads is not None:
        return (f"# [resources] threads = {threads}: OpenMP/BLAS and numba threads of each rank\n"
                f"export OMP_NUM_THREADS={threads}\nexport NUMBA_NUM_THREADS={threads}")
    return ("# one thread per CPU SLURM gives each task ([resources] threads sets it)\n"
            "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}\n"
            "export NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}")


def _shared_fragment(name: str) -> Path:
    """A file templates include (signals.bash, launch-*.bash), from the first template dir
    holding it."""
    for d in template_dirs():
        if (d / name).is_file():
            return d / name
    raise UsageError(f"this hpcopt installation is missing jobs/{name}")


def _substitute(text: str, values: dict[str, str], where: str) -> str:
    def one(m: re.Match) -> str:
        if m.group(1) not in values:
            raise UsageError(f"{where}: unknown template placeholder {{{{{m.group(1)}}}}}; "
                             f"known: {', '.join(sorted(values))}")
        return values[m.group(1)]
    return _PLACEHOLDER.sub(one, text)


def _checked_path(path: str | Path, what: str) -> Path:
    path = Path(os.path.abspath(Path(path).expanduser()))
    if _CONTROL.search(str(path)):
        raise UsageError(f"the {what} path {str(path)!r} holds a control character (newline?)")
    return path


def _values(name: str, config_path: Path, cfg: SlurmConfig, command: str,
            output_path: Path, is_array: bool) -> dict[str, str]:
    job_name = cfg.job_name or f"hpcopt-{command}-{config_path.stem}"
    log_name = re.sub(r"[^A-Za-z0-9._-]", "_", job_name)
    log_dir = str(output_path.parent).replace("%", "%%")     # % starts a SLURM file pattern
    log = f"{log_dir}/{log_name}-{'%A_%a' if is_array else '%j'}"
    directives = [("job-name", job_name), ("chdir", str(config_path.parent)),
                  ("output", f"{log}.out"), ("error", f"{log}.err"), ("open-mode", "append"),
                  ("partition", cfg.partition), ("account", cfg.account), ("qos", cfg.qos),
                  ("time", cfg.time), ("nodes", cfg.nodes), ("ntasks", cfg.ntasks),
                  ("cpus-per-task", cfg.cpus_per_task), ("mem", cfg.mem),
                  ("gres", f"gpu:{cfg.gpus}" if cfg.gpus else None)]
    lines = [f"#SBATCH --{opt}={_directive_value(str(v))}" for opt, v in directives
             if v is not None]
    if cfg.max_requeue:
        lines.append("#SBATCH --requeue")
    lines += [f"#SBATCH {opt}" for opt in cfg.extra_sbatch]
    suffix = output_path.suffix
    values = {
        "version": __version__,
        "template": name,
        "sbatch_options": "\n".join(lines),
        "signal_lead": str(cfg.signal_lead),
        "env_setup": "\n".join(cfg.env_setup) if cfg.env_setup else "# (no env_setup lines)",
        "hpcopt": _words(cfg.hpcopt or default_hpcopt()),
        "ntasks": str(cfg.ntasks),
        "command": shlex.quote(command),
        "config": shlex.quote(str(config_path)),
        "result": shlex.quote(str(output_path)),
        "result_stem": shlex.quote(str(output_path)[: len(str(output_path)) - len(suffix)]),
        "result_suffix": shlex.quote(suffix),
        "max_requeue": str(cfg.max_requeue),
    }
    if cfg.array is not None:
        values["array_spec"] = (f"0-{cfg.array - 1}" +
                                (f"%{cfg.max_concurrent}" if cfg.max_concurrent else ""))
    return values


def _words(words) -> str:
    return " ".join(shlex.quote(w) for w in words)


def _directive_value(value: str) -> str:
    """A value as sbatch reads it in an #SBATCH line: plain, or in double quotes."""
    if _CONTROL.search(value):
        raise UsageError(f"an #SBATCH value cannot hold control characters: {value!r}")
    if _SAFE_DIRECTIVE.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- submission --------------------------------------------------------------------------

@dataclass(frozen=True)
class SubmittedJob:
    job_id: str
    script: Path


def campaign_command(data: dict) -> str:
    """The hpcopt subcommand a config is for: its [hpo] or [temper] table, else sweep."""
    for command in ("hpo", "temper"):
        if command in data:
            return command
    return "sweep"


def default_output(data: dict, config_path: Path, source: str) -> Path:
    """The config's [output] path (relative to the config's directory), or CONFIG-STEM.h5."""
    output = data.get("output", {})
    path = output.get("path") if isinstance(output, dict) else None
    if path is None:
        return config_path.parent / f"{config_path.stem}.h5"
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(f"expected a file path, got {path!r}", key="output.path", source=source)
    path = Path(path).expanduser()
    return path if path.is_absolute() else config_path.parent / path


@dataclass(frozen=True)
class JobScript:
    text: str          # the rendered batch script
    path: Path         # where submit writes it: CONFIG_DIR/CONFIG_STEM.TEMPLATE.sbatch
    log_dir: Path      # where SLURM writes the job's .out/.err (the result file's directory)
    warnings: tuple[str, ...] = ()   # the job runs, but probably not as meant


def prepare_job(config_path: str | Path, template: str, output: str | Path | None = None
                ) -> JobScript:
    """Read the config, validate [slurm] (and [resources] against it) and render the batch
    script (nothing written)."""
    config_path = Path(os.path.abspath(Path(config_path).expanduser()))
    source = str(config_path)
    data, _ = load_toml(config_path)
    root = Table(data, "", source)
    slurm_cfg = parse_slurm_config(root, source)
    resources = parse_resources(root, source) if "resources" in data else Resources()
    command = campaign_command(data)
    result = Path(os.path.abspath(output)) if output else default_output(data, config_path, source)
    template_path = find_template(template)
    launcher = template_launcher(template_path, slurm_cfg)
    warnings = check_job(slurm_cfg, resources, command, launcher)
    study = _study_description(data, source) if uses_array(template_path) else None
    text = render(template, config_path, slurm_cfg, command, result, threads=resources.threads,
                  study=study)
    return JobScript(text, config_path.parent / f"{config_path.stem}.{template_path.stem}.sbatch",
                     result.parent, tuple(warnings))


def workers_per_node(cfg: SlurmConfig, command: str) -> int:
    """Evaluating ranks on the fullest node: ntasks spread over `nodes` (all on one when
    not given); on one node the coordinator of a sweep or HPO study evaluates nothing."""
    nodes = min(cfg.nodes or 1, cfg.ntasks)
    per_node = -(-cfg.ntasks // nodes)
    if nodes == 1 and cfg.ntasks > 1 and command in ("sweep", "hpo"):
        per_node -= 1
    return per_node


def check_job(cfg: SlurmConfig, res: Resources, command: str, launcher: str) -> list[str]:
    """Check [slurm] against [resources] and the launcher against this Python's MPI.

    Raises ConfigError when the job cannot work (ranks asking for GPUs the job does not
    get); returns warnings for a job that runs, but probably not as meant.
    """
    warnings = []
    cpus = cfg.cpus_per_task or 1
    if res.threads is not None and res.threads > cpus:
        warnings.append(f"resources.threads = {res.threads} but slurm.cpus_per_task = "
                        f"{cfg.cpus_per_task or '1 (not set)'}: the {res.threads} threads of "
                        f"each rank share {cpus} CPU(s); set cpus_per_task = {res.threads}")
    gpus_elsewhere = any(o.startswith(("--gres", "--gpus")) for o in cfg.extra_sbatch)
    if res.gpus and not cfg.gpus and not gpus_elsewhere:
        raise ConfigError(f"resources.gpus = {res.gpus} GPU(s) per rank, but the job asks for "
                          f"no GPUs: set slurm.gpus_per_node (GPUs per node, --gres=gpu:N)",
                          key="slurm.gpus_per_node", source=cfg.source)
    if res.gpus and cfg.gpus and not res.share_gpus:
        workers = workers_per_node(cfg, command)
        if workers * res.gpus > cfg.gpus:
            raise ConfigError(
                f"{workers} evaluating rank(s) per node x resources.gpus = {res.gpus} need "
                f"{workers * res.gpus} GPUs per node, but slurm.gpus_per_node = {cfg.gpus}: "
                f"ask for more, spread the ranks (slurm.nodes), or set resources.share_gpus",
                key="slurm.gpus_per_node", source=cfg.source)
    if cfg.gpus and not res.gpus:
        warnings.append(f"slurm.gpus_per_node = {cfg.gpus} but resources.gpus is 0: every rank "
                        f"sees all of its node's GPUs (resources.gpus = 1 gives each its own)")
    mpich = bundled_mpich() if cfg.hpcopt is None else None
    if mpich and launcher == "srun" and cfg.mpi == "pmix":
        warnings.append(f"slurm.mpi = 'pmix', but this Python's MPI is the MPICH wheel "
                        f"(mpich {mpich}), which speaks PMI-1 only: srun --mpi=pmix cannot start "
                        f"it; use mpi = 'pmi2' (SLURM's pmi2 plugin serves PMI-1 too)")
    if mpich and launcher == "module" and \
            not any("MPI4PY_LIBMPI" in line for line in cfg.env_setup):
        warnings.append(f"launcher = 'module', but mpi4py in {sys.executable} loads the MPICH "
                        f"wheel (mpich {mpich}) before any module's libmpi, so the site's mpirun "
                        f"would start singletons: export MPI4PY_LIBMPI=<the site's libmpi.so> "
                        f"in env_setup, or give hpcopt = a Python whose mpi4py uses the site's MPI")
    return warnings


def _study_description(data: dict, source: str) -> str:
    """The study the array tasks join, for the script's header (never user text that
    could break out of the comment line)."""
    hpo = data.get("hpo", {}) if isinstance(data.get("hpo"), dict) else {}
    storage, name = hpo.get("storage"), hpo.get("study_name")
    if storage == "memory":
        raise ConfigError("the array template's tasks are separate jobs that join one study; "
                          "an in-memory study lives in one process: use a journal file (the "
                          "default) or a database URL", key="hpo.storage", source=source)

    def shown(value) -> str | None:
        return repr(value) if isinstance(value, str) and not _CONTROL.search(value) else None

    study = shown(name) or "named after the [output] file"
    where = shown(storage) or "the journal file next to the [output] file"
    return f"study {study} in {where}"


def submit_job(config_path: str | Path, template: str, output: str | Path | None = None
               ) -> SubmittedJob:
    """Write the batch script next to the config and sbatch it; return the job id."""
    return sbatch_script(prepare_job(config_path, template, output))


def sbatch_script(job: JobScript) -> SubmittedJob:
    """Write a prepared batch script (and its log directory) and sbatch it."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise UsageError("sbatch not found on PATH: run `hpcopt submit` where SLURM is installed "
                         "(a login node), or use --dry-run to print the batch script")
    try:
        job.path.write_text(job.text, encoding="utf-8")
        job.log_dir.mkdir(parents=True, exist_ok=True)   # sbatch does not create it
    except OSError as exc:
        raise UsageError(f"cannot write the batch script {job.path}: {exc}") from None
    try:
        proc = subprocess.run([sbatch, "--parsable", str(job.path)], cwd=job.path.parent,
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"sbatch {job.path} failed: {exc}") from None
    if proc.returncode != 0:
        raise UsageError(f"sbatch refused {job.path} (exit {proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()}")
    job_id = proc.stdout.strip().split(";")[0]
    if not job_id:
        raise UsageError(f"sbatch printed no job id for {job.path}: {proc.stderr.strip()}")
    return SubmittedJob(job_id, job.path)


def submit(config_path: str | Path, template: str, dry_run: bool = False,
           output: str | Path | None = None) -> int:
    """`hpcopt submit`: print the script (dry run) or sbatch it and print the job id. Exit code."""
    job = prepare_job(config_path, template, output)
    for warning in job.warnings:
        sys.stderr.write(f"hpcopt: warning: {warning}\n")
    if dry_run:
        sys.stdout.write(job.text)
        return 0
    submitted = sbatch_script(job)
    print(f"Submitted batch job {submitted.job_id} ({submitted.script})", flush=True)
    return 0


# -- inside a job ------------------------------------------------------------------------

def in_slurm_allocation() -> bool:
    """True inside a SLURM job (batch script, srun step or salloc shell)."""
    return bool(os.environ.get("SLURM_JOB_ID"))


def slurm_ids() -> dict[str, str]:
    """SLURM job/array ids and node list for the result-file attributes (only those set)."""
    names = {"SLURM_JOB_ID": "slurm_job_id", "SLURM_ARRAY_JOB_ID": "slurm_array_job_id",
             "SLURM_ARRAY_TASK_ID": "slurm_array_task_id", "SLURM_JOB_NODELIST": "slurm_nodelist",
             "SLURM_RESTART_COUNT": "slurm_restart_count"}
    return {attr: os.environ[var] for var, attr in names.items() if os.environ.get(var)}
