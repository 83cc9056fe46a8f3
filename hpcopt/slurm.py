"""SLURM side of hpcopt: jobs/ templates and `hpcopt submit` (the [slurm] table itself is
hpcopt.slurm_config).

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
from .slurm_config import (_CONTROL, DEFAULT_LAUNCHER, TEMPLATES, SlurmConfig,
                           _directive_value, parse_slurm_config)
from .tomlread import Table, load_toml

_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


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
           study: str | None = None, study_options: list[str] | None = None) -> str:
    """The batch script of template `template_name` for one campaign config.

    `command` is the hpcopt subcommand (sweep | temper | hpo); `output_path` the result file
    (for the array template, the base name of the per-task files ``NAME.taskI.SUFFIX``);
    `threads` the config's [resources] threads; `study` the HPO study, as the header names it,
    and `study_options` the command-line options that name it (array tasks).
    """
    from .campaign.registry import commands
    kinds = commands().get(command)
    if not kinds:
        raise UsageError(f"unknown campaign command {command!r}: expected one of "
                         f"{', '.join(commands())}")
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
        if not any(k.joins_study for k in kinds):
            raise UsageError(f"the {template_name!r} template runs HPO array tasks that join one "
                             f"study; a {command} campaign runs in one allocation: use "
                             f"--template single or --template mpirun")
    launcher = template_launcher(template_path, slurm_cfg)
    values = _values(template_path.stem, config_path, slurm_cfg, command, output_path, is_array)
    values.update(_launch_values(launcher, slurm_cfg), study=study or "the [hpo] study",
                  study_options=_words(study_options or []),
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


# -- submission --------------------------------------------------------------------------

@dataclass(frozen=True)
class SubmittedJob:
    job_id: str
    script: Path


def campaign_command(data: dict) -> str:
    """The hpcopt subcommand a config is for (the registry of campaign kinds decides)."""
    from .campaign.registry import command_of
    return command_of(data)


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
    study, study_options = (array_study(data, source, result) if uses_array(template_path)
                            else (None, []))
    text = render(template, config_path, slurm_cfg, command, result, threads=resources.threads,
                  study=study, study_options=study_options)
    return JobScript(text, config_path.parent / f"{config_path.stem}.{template_path.stem}.sbatch",
                     result.parent, tuple(warnings))


def workers_per_node(cfg: SlurmConfig, command: str) -> int:
    """Evaluating ranks on the fullest node: ntasks spread over `nodes` (all on one when
    not given); on one node the coordinator of a sweep or HPO study evaluates nothing."""
    nodes = min(cfg.nodes or 1, cfg.ntasks)
    per_node = -(-cfg.ntasks // nodes)
    from .campaign.registry import commands
    if nodes == 1 and cfg.ntasks > 1 and \
            not all(k.coordinator_evaluates for k in commands()[command]):
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


def array_study(data: dict, source: str, result: Path) -> tuple[str, list[str]]:
    """The study every array task joins: (its description for the script's header,
    the hpcopt options that name it). Each task writes its own result file (-o), and the
    study follows the result file by default, so the tasks are told the base result file's
    study: its journal FILE.journal and its stem, unless the config names them itself."""
    hpo = data.get("hpo", {}) if isinstance(data.get("hpo"), dict) else {}
    storage, name = hpo.get("storage"), hpo.get("study_name")
    if storage == "memory":
        raise ConfigError("the array template's tasks are separate jobs that join one study; "
                          "an in-memory study lives in one process: use a journal file (the "
                          "default) or a database URL", key="hpo.storage", source=source)
    options: list[str] = []
    if storage is None:
        storage = f"{result}.journal"
        options += ["--storage", storage]
    if name is None:
        name = result.stem
        options += ["--study-name", name]

    def shown(value) -> str:
        return repr(value) if isinstance(value, str) and not _CONTROL.search(value) \
            else "(named in the config)"

    return f"study {shown(name)} in {shown(storage)}", options


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
