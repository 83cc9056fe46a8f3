"""Shared pieces of the config and data fuzz tests (tests/test_fuzz_*.py).

* valid base configs of every campaign kind, as plain dicts;
* :func:`to_toml`, a small TOML writer (nan/inf included) so mutated dicts become files;
* hypothesis strategies that mutate a config (drop keys, unknown keys, wrong types,
  out-of-range numbers, bad import paths) or its text (truncated, random bytes);
* :func:`check_prepare`: run a kind's ``prepare()`` in-process under a hang and memory
  guard; anything but a :class:`~hpcopt.errors.UsageError` that names the file fails.
"""

from __future__ import annotations

import copy
import math
import re
import resource
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import strategies as st

from hpctest import NIST, REPO
from hpcopt.errors import ConfigError, DataError, ResultFileError, UsageError

MISRA1A = NIST / "Misra1a.dat"
XPCS_DEMO = REPO / "hpcopt" / "data" / "xpcs_demo.h5"

# --------------------------------------------------------------------------- base configs
# Every base config passes prepare() as written (tested in test_fuzz_config.py).

SWEEP_OBJECTIVE = {
    "objective": {"function": "testobj:quadratic"},
    "parameters": {"x": {"min": -2.0, "max": 2.0, "points": 5},
                   "y": {"min": 1e-3, "max": 2.0, "points": 4, "scale": "log"},
                   "z": {"value": 0.5}},
    "search": {"method": "grid"},
    "local": {"method": "nelder-mead", "max_nfev": 50},
    "run": {"seed": 3, "mode": "dynamic", "max_retries": 1, "task_timeout": 5.0},
    "slurm": {"partition": "debug", "time": "01:00:00"},
    "output": {"path": "f.h5"},
}

SWEEP_NIST = {
    "model": {"name": "nist:Misra1a"},
    "data": {"path": str(MISRA1A)},
    "parameters": {"b1": {"min": 100.0, "max": 1000.0, "points": 4},
                   "b2": {"min": 1e-5, "max": 1e-2, "points": 4, "scale": "log"}},
    "search": {"method": "sobol", "samples": 8},
    "local": {"method": "least_squares"},
    "output": {"path": "misra1a.h5"},
}

SWEEP_XPCS = {
    "model": {"name": "xpcs:homodyne"},
    "data": {"path": str(XPCS_DEMO)},
    "parameters": {"D0": {"min": 1e3, "max": 3e4, "scale": "log"},
                   "alpha": {"min": -1.5, "max": 0.5},
                   "D_offset": {"min": 0.0, "max": 2000.0},
                   "gamma_dot_0": {"min": 1e-6, "max": 1e-3, "scale": "log"},
                   "beta": {"min": -0.5, "max": 1.5},
                   "gamma_dot_offset": {"min": 0.0, "max": 1e-4},
                   "phi0": {"min": -30.0, "max": 50.0}},
    "search": {"method": "lhs", "samples": 6},
    "local": {"method": "least_squares"},
    "run": {"seed": 1},
    "output": {"path": "xpcs.h5"},
}

TEMPER_ISING = {
    "temper": {"replicas": 6, "t_min": 1.0, "t_max": 20.0, "ladder": "geometric",
               "exchange_interval": 20, "rounds": 60},
    "problem": {"name": "ising", "L": 4},
    "run": {"seed": 7},
    "output": {"path": "pt.h5"},
}

TEMPER_FUNCTION = {
    "temper": {"replicas": 4, "t_min": 0.5, "t_max": 8.0, "exchange_interval": 10,
               "rounds": 40, "burn_in": 10, "thin": 2},
    "problem": {"function": "testobj:slow_energy", "x0": [1.0, 0.0], "step": [0.3, 0.3],
                "lower": [-3.0, -3.0], "upper": [3.0, 3.0], "names": ["a", "b"]},
    "run": {"seed": 3, "checkpoint_every": 5},
    "output": {"path": "pt.h5"},
}

TEMPER_MIXTURE = {
    "temper": {"temperatures": [1.0, 2.0, 4.0, 8.0], "ladder": "adaptive", "rounds": 40,
               "burn_in": 10, "adapt_rounds": 5},
    "problem": {"name": "gaussian-mixture", "dim": 2, "modes": 2, "separation": 6.0,
                "weights": [1.0, 2.0], "step_scaling": "sqrt-t"},
    "output": {"path": "mix.h5"},
}

TEMPER_FIT = {
    "temper": {"replicas": 3, "t_min": 1.0, "t_max": 4.0, "rounds": 20},
    "problem": {"model": "nist:Misra1a", "data": str(MISRA1A), "x0": [240.0, 5.5e-4],
                "step": [1.0, 1e-6], "lower": [0.0, 0.0], "upper": [1000.0, 1.0]},
    "output": {"path": "fit.h5"},
}

HPO = {
    "hpo": {"sampler": "tpe", "pruner": "median", "n_trials": 20, "direction": "minimize",
            "n_warmup_steps": 2, "trial_timeout": 60.0, "max_concurrent": 2},
    "objective": {"function": "hpoobj:quad"},
    "space": {"x": {"type": "uniform", "low": -5.0, "high": 10.0},
              "y": {"type": "uniform", "low": -5.0, "high": 5.0, "step": 0.5},
              "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
              "layers": {"type": "categorical", "choices": [[64, 32], [128, 64, 32]]},
              "n": {"type": "int", "low": 1, "high": 8},
              "opt": ["sgd", "adam"],
              "momentum": {"type": "uniform", "low": 0.0, "high": 0.99,
                           "when": {"param": "opt", "equals": "sgd"}},
              "batch": 64},
    "run": {"seed": 11},
    "resources": {"threads": 1},
    "output": {"path": "study.h5"},
}

HPO_COMMAND = {
    "hpo": {"sampler": "random", "pruner": "asha", "n_trials": 8, "min_resource": 1,
            "reduction_factor": 3, "storage": "memory"},
    "objective": {"command": ["{python}", "{config_dir}/train.py", "--x={x}", "--act", "{act}"],
                  "result_file": "result.json", "result_key": "value",
                  "progress_file": "progress.jsonl", "env": {"OMP_NUM_THREADS": "1"}},
    "space": {"x": {"type": "uniform", "low": 0.0, "high": 1.0}, "act": ["relu", "tanh"]},
    "output": {"path": "ext.h5"},
}

HPO_PBT = {
    "hpo": {"scheduler": "pbt", "direction": "minimize", "max_retries": 1,
            "pbt": {"population": 4, "perturbation_interval": 5, "max_steps": 20,
                    "quantile_fraction": 0.25, "resample_probability": 0.25,
                    "perturbation_factors": [0.8, 1.2]}},
    "objective": {"function": "hpoobj:curve"},
    "space": {"x": {"type": "uniform", "low": -5.0, "high": 5.0},
              "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1}},
    "output": {"path": "pbt.h5"},
}

#: name -> (command, base config)
BASES: dict[str, tuple[str, dict]] = {
    "sweep-objective": ("sweep", SWEEP_OBJECTIVE),
    "sweep-nist": ("sweep", SWEEP_NIST),
    "sweep-xpcs": ("sweep", SWEEP_XPCS),
    "temper-ising": ("temper", TEMPER_ISING),
    "temper-function": ("temper", TEMPER_FUNCTION),
    "temper-mixture": ("temper", TEMPER_MIXTURE),
    "temper-fit": ("temper", TEMPER_FIT),
    "hpo": ("hpo", HPO),
    "hpo-command": ("hpo", HPO_COMMAND),
    "hpo-pbt": ("hpo", HPO_PBT),
}

# --------------------------------------------------------------------------- TOML writer
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else _string(k)


def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    """One TOML value (inline form for tables and lists)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {type(v).__name__}")


def to_toml(cfg: dict) -> str:
    """TOML text of a config dict: top-level tables as [sections], deeper ones inline."""
    lines = [f"{_key(k)} = {toml_value(v)}" for k, v in cfg.items() if not isinstance(v, dict)]
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines.append(f"\n[{_key(k)}]")
            lines += [f"{_key(kk)} = {toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- mutations
#: import specs and model names that must all be refused or accepted cleanly
BAD_IMPORTS = ["nomodule:f", "os:nonexistent", "not a path", "testobj:NOT_CALLABLE", "math:pi",
               "testobj:", ":f", "testobj:quadratic.attr", "1abc:f", "a..b:c", "os:sep",
               "testobj:broken_import_time", "testobj:quadratic", "hpoobj:quad", "math:sqrt",
               "nist:Misra1a", "nist:Nope", "nist:", "xpcs:homodyne", "xpcs:nope", ""]

#: numbers that are out of range somewhere (counts, bounds, temperatures, seeds)
ODD_NUMBERS = [0, -1, 1, 2, -3, 10**7, 2**31, 2**63 - 1, -(2**63), 0.0, -0.0, -1.0, 0.5,
               1e-320, 1e308, -1e308, math.nan, math.inf, -math.inf]

# safe strings: no '/', '~' or ':' (no paths outside the test folder, no import specs)
_safe_text = st.text(alphabet="abcxyzNAB019 _-.", max_size=12)
_scalar = st.one_of(
    st.sampled_from(ODD_NUMBERS),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    _safe_text,
    st.sampled_from(BAD_IMPORTS),
    st.sampled_from(["grid", "sobol", "log", "linear", "tpe", "ising", "adaptive", "none",
                     "uniform", "int", "categorical", "memory", "foo://bar", "nelder-mead"]),
)
#: any TOML value (wrong types included): scalars, lists, tables
toml_values = st.recursive(
    _scalar,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
                                               children, max_size=3)),
    max_leaves=6)
unknown_names = st.from_regex(r"[a-z][a-z_0-9]{0,10}", fullmatch=True)


def paths(cfg: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into `cfg` (dict keys and list indices), tables and leaves."""
    out = []
    if isinstance(cfg, dict):
        items = cfg.items()
    elif isinstance(cfg, list):
        items = enumerate(cfg)
    else:
        return out
    for k, v in items:
        out.append(prefix + (k,))
        out += paths(v, prefix + (k,))
    return out


def get(cfg: Any, path: tuple) -> Any:
    for k in path:
        cfg = cfg[k]
    return cfg


@st.composite
def mutation(draw, cfg: dict) -> tuple[str, tuple, Any]:
    """One (operation, path, value) applicable to `cfg`."""
    all_paths = paths(cfg)
    op = draw(st.sampled_from(["drop", "replace", "replace", "replace", "unknown", "odd_number",
                               "empty_table"]))
    if op == "unknown":
        tables = [()] + [p for p in all_paths if isinstance(get(cfg, p), dict)]
        where = draw(st.sampled_from(tables))
        return op, where + (draw(unknown_names),), draw(toml_values)
    path = draw(st.sampled_from(all_paths))
    if op == "drop":
        return op, path, None
    if op == "odd_number":
        return op, path, draw(st.sampled_from(ODD_NUMBERS))
    if op == "empty_table":
        return op, path, {}
    return op, path, draw(toml_values)


def apply(cfg: dict, op: str, path: tuple, value: Any) -> dict:
    """A mutated deep copy of `cfg`."""
    cfg = copy.deepcopy(cfg)
    parent = get(cfg, path[:-1])
    key = path[-1]
    if op == "drop":
        del parent[key]
    elif op == "unknown" and isinstance(parent, dict):
        parent.setdefault(key, value)
    else:
        parent[key] = value
    return cfg


@st.composite
def mutated_config(draw, base: dict, max_mutations: int = 3) -> dict:
    cfg = base
    for _ in range(draw(st.integers(1, max_mutations))):
        if not paths(cfg):
            break
        cfg = apply(cfg, *draw(mutation(cfg)))
    return cfg


@st.composite
def broken_text(draw, base: dict) -> bytes:
    """The TOML of `base`, truncated, overwritten with random bytes, or just garbage."""
    raw = to_toml(base).encode()
    how = draw(st.sampled_from(["truncate", "insert", "garbage", "duplicate"]))
    if how == "truncate":
        return raw[:draw(st.integers(0, len(raw) - 1))]
    if how == "garbage":
        return draw(st.binary(max_size=200))
    if how == "duplicate":  # a table or key given twice is invalid TOML
        line = draw(st.sampled_from([ln for ln in raw.decode().splitlines() if ln.strip()]))
        return raw + b"\n" + line.encode() + b"\n"
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]


# --------------------------------------------------------------------------- running prepare()
class Hang(BaseException):
    """prepare() did not return in time (BaseException: code under test cannot swallow it)."""


@contextmanager
def guarded(seconds: int = 5, extra_memory_gb: float = 0.5):
    """Fail fast instead of hanging or eating the machine's memory: SIGALRM after `seconds`,
    and an address-space limit `extra_memory_gb` above what the process uses now."""
    def on_alarm(signum, frame):
        raise Hang(f"no answer after {seconds} s")

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = _vm_bytes()
    cap = used + int(extra_memory_gb * 2**30) if used else resource.RLIM_INFINITY
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _vm_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _prepare(command: str) -> Callable:
    def prepare(config: Path, output=None, resume=False, force=False, **options):
        from hpcopt.campaign.contract import CampaignRequest
        from hpcopt.campaign.lifecycle import prepare as lifecycle_prepare
        return lifecycle_prepare(CampaignRequest(command, config, output, resume, force,
                                                 options=options))
    return prepare


PREPARE: dict[str, Callable] = {kind: _prepare(kind) for kind in ("sweep", "temper", "hpo")}

# ConfigErrors that are about the whole file, so they name no key
_WHOLE_FILE = ("invalid TOML", "cannot read config file", "config file not found")


def check_prepare(kind: str, config: Path, **kwargs) -> UsageError | None:
    """Run `kind`'s prepare() on `config`: None if it accepts it, else the UsageError.

    Fails the test on any other exception, a hang, or a message that does not name the
    config file and key (ConfigError), the data file (DataError) or the problem.
    """
    what = f"{kind} prepare() of {config.name}:\n{_text_of(config)}"
    try:
        with guarded():
            PREPARE[kind](config, **kwargs)
    except UsageError as exc:
        check_message(exc, config, what)
        return exc
    except Hang as exc:
        pytest.fail(f"{what}\nhangs: {exc}")
    except BaseException as exc:  # noqa: BLE001 - this is what the property forbids
        pytest.fail(f"{what}\nraised {type(exc).__name__} instead of a UsageError: {exc}")
    return None


def check_message(exc: UsageError, config: Path, what: str = "") -> None:
    """The one-line message of a UsageError names what it is about."""
    msg = str(exc)
    assert msg.strip(), f"{what}\nempty error message"
    assert "Traceback" not in msg, f"{what}\ntraceback in the message: {msg}"
    if isinstance(exc, ConfigError):
        if exc.key == "--parameter-ranges":    # a command-line option, not a config key
            return
        assert exc.source == str(config) and msg.startswith(f"{config}: "), \
            f"{what}\nConfigError does not name the config file: {msg!r}"
        if not exc.problem.startswith(_WHOLE_FILE):
            assert exc.key, f"{what}\nConfigError names no key: {msg!r}"
            assert msg.startswith(f"{config}: {exc.key}: "), f"{what}\nbad message: {msg!r}"
    elif isinstance(exc, DataError):
        assert exc.path and msg.startswith(f"{exc.path}: "), \
            f"{what}\nDataError does not name the data file: {msg!r}"
    elif isinstance(exc, ResultFileError):
        assert msg.split(":")[0], f"{what}\nResultFileError does not name the result file: {msg!r}"
    else:
        raise AssertionError(f"{what}\nunexpected UsageError class {type(exc).__name__}: {msg}")


def _text_of(config: Path) -> str:
    """The first 2000 bytes of a regular file (never read a device or a pipe to its end)."""
    try:
        if not config.is_file():
            return "<not a regular file>"
        with open(config, "rb") as f:
            return f.read(2000).decode("utf-8", "replace")
    except OSError as exc:
        return f"<{exc}>"
