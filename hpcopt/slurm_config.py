"""The [slurm] table of a campaign config: a validated :class:`SlurmConfig`.

Read by the campaign lifecycle (validation only: a campaign runs the same inside or outside
SLURM) and by `hpcopt submit` (hpcopt.slurm), which renders the jobs/ templates from it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from .errors import UsageError
from .tomlread import Table

TEMPLATES = ("single", "mpirun", "array")
#: what starts the ranks of the job step: SLURM (srun), the MPICH bundled with the Python
#: that renders the script (the venv's mpirun), or the `mpirun` that env_setup puts on PATH
LAUNCHERS = ("srun", "bundled", "module")
#: a template's launcher when [slurm] launcher is not given (others: srun)
DEFAULT_LAUNCHER = {"mpirun": "bundled"}
#: SLURM's limit for --signal=...@seconds
MAX_SIGNAL_LEAD = 65535

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


def _directive_value(value: str) -> str:
    """A value as sbatch reads it in an #SBATCH line: plain, or in double quotes."""
    if _CONTROL.search(value):
        raise UsageError(f"an #SBATCH value cannot hold control characters: {value!r}")
    if _SAFE_DIRECTIVE.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
