"""Campaign configs: TOML -> frozen dataclasses, validated completely on rank 0.

The tables every kind shares ([output], [run]) live here, read by the campaign
lifecycle; each kind parses its own tables (hpcopt.sweep.config, hpcopt.temper.config,
hpcopt.hpo.config).  Unknown tables and keys are errors; relative paths are taken from
the config file's directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .farm.tree import HIERARCHIES
from .mpi.runtime import WAIT_POLICIES
from .tomlread import Table, closest, load_toml, parse_toml_text

FARM_MODES = ("dynamic", "static")
ISOLATION = ("none", "process")


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
    wait: str = "auto"                 # how waiting ranks poll: auto | quiet | spin (mpi.runtime)
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


def open_config(path: str | Path) -> tuple[Table, ConfigFile]:
    data, text = load_toml(path)
    cf = ConfigFile(Path(path), text)
    return Table(data, "", cf.source), cf


def open_config_text(text: str, path: str | Path) -> tuple[Table, ConfigFile]:
    """A config given as text (e.g. recorded in a result file), as if read from `path`."""
    cf = ConfigFile(Path(path), text)
    return Table(parse_toml_text(text, cf.source), "", cf.source), cf


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
        wait=t.str("wait", "auto", choices=WAIT_POLICIES),
        hierarchy=t.str("hierarchy", "auto", choices=HIERARCHIES),
    )
    t.finish()
    return run


def check_tables(root: Table, allowed: tuple[str, ...], kind: str) -> None:
    unknown = [k for k in root.keys() if k not in allowed]
    if unknown:
        named = [f"{k} (did you mean [{hint}]?)" if (hint := closest(k, allowed)) else k
                 for k in unknown]
        raise root.error(f"unknown table{'s' if len(unknown) > 1 else ''} for a {kind} config: "
                         f"{', '.join(named)} (allowed: {', '.join(allowed)})", unknown[0])
