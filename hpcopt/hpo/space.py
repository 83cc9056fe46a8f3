"""HPO search space read from the ``[space]`` TOML table.

Each key is one parameter:

    batch   = 64                                            # fixed (plain value)
    width   = { type = "fixed", value = [64, 32] }          # fixed, any TOML value
    act     = ["relu", "tanh"]                              # categorical (plain list)
    layers  = { type = "categorical", choices = [[64, 32], [128, 64, 32]] }
    x       = { type = "uniform", low = -5.0, high = 10.0 }           # optional step
    lr      = { type = "loguniform", low = 1e-4, high = 1e-1 }
    n       = { type = "int", low = 1, high = 8 }                     # optional step, log
    y       = { type = "float", low = 0.0, high = 1.0, step = 0.1 }   # Optuna's spelling:
    lr2     = { type = "float", low = 1e-4, high = 1e-1, log = true } #   suggest_float(...)
    opt     = ["sgd", "adam"]
    [space.momentum]                                        # a sub-table works too
    type = "uniform"
    low = 0.0
    high = 0.99
    when = { param = "opt", equals = "sgd" }                # only when opt == "sgd"

``type = "float"`` is Optuna's ``suggest_float``: ``log = true`` makes it loguniform,
``step`` a grid (not both). A key that no parameter kind uses is an error that names it
and suggests the closest known key (``maxx`` -> "did you mean 'high'?").

``when`` makes a parameter conditional: present only when the parent parameter has
the given value (``equals``) or one of the given values (``in``).

Optuna's categorical choices must be hashable primitives, so lists and tables among
the choices are passed to Optuna as their JSON text and decoded back before the
objective sees them: the objective always gets the real value (``[64, 32]``).
"""

from __future__ import annotations

import math

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
from optuna.distributions import (BaseDistribution, CategoricalDistribution,
                                  FloatDistribution, IntDistribution)

from ..tomlread import Table

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PRIMITIVE = (bool, int, float, str)
PARAM_TYPES = ("fixed", "categorical", "uniform", "loguniform", "int")
#: accepted spellings of ``type`` (Optuna's "float" becomes uniform or loguniform)
TYPE_NAMES = PARAM_TYPES + ("float",)
#: the keys each kind of entry takes
_KEYS = {"fixed": {"type", "value", "when"}, "categorical": {"type", "choices", "when"},
         "uniform": {"type", "low", "high", "step", "when"},
         "loguniform": {"type", "low", "high", "when"},
         "float": {"type", "low", "high", "step", "log", "when"},
         "int": {"type", "low", "high", "step", "log", "when"}}
#: names users bring from elsewhere -> ours (scipy/sweep ranges, other HPO tools)
_ALIASES = {"min": "low", "max": "high", "lower": "low", "upper": "high",
            "values": "choices", "options": "choices", "default": "value", "q": "step",
            "log_scale": "log", "kind": "type", "dist": "type", "condition": "when"}


@dataclass(frozen=True)
class Condition:
    """Parameter is active only when `parent` takes one of `values` (real values)."""

    parent: str
    values: tuple


@dataclass(frozen=True)
class Param:
    """One search-space parameter (see module docstring for the kinds)."""

    name: str
    kind: str                      # one of PARAM_TYPES
    value: Any = None              # fixed
    choices: tuple = ()            # categorical, real values
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    when: Condition | None = None
    json_choices: bool = False     # categorical choices passed to Optuna as JSON text

    @property
    def is_numeric(self) -> bool:
        """True when every value is a number (gets its own float column in result tables)."""
        if self.kind in ("uniform", "loguniform", "int"):
            return True
        values = (self.value,) if self.kind == "fixed" else self.choices
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)

    def distribution(self) -> BaseDistribution | None:
        """The Optuna distribution (None for a fixed value, which Optuna never sees)."""
        if self.kind == "fixed":
            return None
        if self.kind == "categorical":
            return CategoricalDistribution([self.encode(c) for c in self.choices])
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log,
                                   step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def values(self) -> list[Any] | None:
        """Every value of a discrete parameter (real values); None when continuous."""
        if self.kind == "fixed":
            return [self.value]
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            if self.log:
                return list(range(int(self.low), int(self.high) + 1))
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            return None
        n = int(math.floor((self.high - self.low) / self.step + 1e-9))
        # as Optuna rounds a stepped float: k * step + low, clipped to the range
        return [float(min(max(k * self.step + self.low, self.low), self.high))
                for k in range(n + 1)]

    def encode(self, value: Any) -> Any:
        """Real value -> Optuna's external value."""
        return _to_json(value) if self.json_choices else value

    def decode(self, value: Any) -> Any:
        """Optuna's external value -> real value."""
        if self.json_choices:
            return json.loads(value)
        if self.kind == "int":
            return int(value)
        if self.kind in ("uniform", "loguniform"):
            return float(value)
        return value


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of parameters; parents always come before their conditional children."""

    params: tuple[Param, ...]
    _by_name: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({p.name: p for p in self.params})

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def is_conditional(self) -> bool:
        return any(p.when is not None for p in self.params)

    def static_distributions(self) -> dict[str, BaseDistribution] | None:
        """Optuna distributions for ``study.ask(fixed_distributions=...)``.

        None when the space is conditional (then :meth:`suggest` must be used).
        """
        if self.is_conditional:
            return None
        cached = self.__dict__.get("_static_distributions")
        if cached is None:        # the policy asks for every trial of a random study
            cached = {p.name: d for p in self.params if (d := p.distribution()) is not None}
            # a cache, not a field: fields are the campaign's config (resume compares them)
            object.__setattr__(self, "_static_distributions", cached)
        return dict(cached)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest every active parameter on `trial`; return the real values (fixed included)."""
        real: dict[str, Any] = {}
        for p in self.params:
            if not self._active(p, real):
                continue
            if p.kind == "fixed":
                real[p.name] = p.value
                continue
            dist = p.distribution()
            if isinstance(dist, CategoricalDistribution):
                raw = trial.suggest_categorical(p.name, dist.choices)
            elif isinstance(dist, IntDistribution):
                raw = trial.suggest_int(p.name, dist.low, dist.high, step=dist.step, log=dist.log)
            else:
                raw = trial.suggest_float(p.name, dist.low, dist.high, step=dist.step, log=dist.log)
            real[p.name] = p.decode(raw)
        return real

    def decode(self, optuna_params: dict[str, Any]) -> dict[str, Any]:
        """Optuna's ``trial.params`` -> real values in space order, fixed values included."""
        real: dict[str, Any] = {}
        for p in self.params:
            if not self._active(p, real):
                continue
            if p.kind == "fixed":
                real[p.name] = p.value
            elif p.name in optuna_params:
                real[p.name] = p.decode(optuna_params[p.name])
        return real

    def enumerate(self, limit: int) -> list[dict[str, Any]] | None:
        """Every point of a discrete space (real values of its active parameters, fixed
        ones included), or None when a parameter is continuous or there are more than
        `limit` points."""
        points: list[dict[str, Any]] = [{}]
        for p in self.params:
            values = p.values()
            if values is None:
                return None
            grown = []
            for point in points:
                if not self._active(p, point):
                    grown.append(point)
                    continue
                grown += [{**point, p.name: v} for v in values]
                if len(grown) > limit:
                    return None
            points = grown
        return points

    def encode(self, real: dict[str, Any]) -> dict[str, Any]:
        """Real values -> Optuna params (fixed and inactive ones left out), e.g. for enqueue."""
        return {p.name: p.encode(real[p.name]) for p in self.params
                if p.kind != "fixed" and p.name in real}

    @staticmethod
    def _active(p: Param, real: dict[str, Any]) -> bool:
        if p.when is None:
            return True
        return p.when.parent in real and any(_same(real[p.when.parent], v) for v in p.when.values)


def _to_json(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps 1 == 1.0 but tells True from 1 (TOML values)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


# -- parsing -----------------------------------------------------------------------------------

def parse_space(table: Table) -> SearchSpace:
    """Parse the ``[space]`` table (call with ``root.table("space")``); errors name key and file."""
    if not table.keys():
        raise table.error("the search space is empty: add at least one parameter")
    params: dict[str, Param] = {}
    for name in table.keys():
        raw = table.raw(name)
        if not _NAME.match(name):
            raise table.error("parameter names must be identifiers (letters, digits, _)", name)
        params[name] = _parse_param(name, raw, table)
    table.finish()
    ordered = _order(params, table)
    for p in ordered:
        if p.when is not None:
            _check_condition(p, params, table)
    return SearchSpace(tuple(ordered))


def _parse_param(name: str, raw: Any, parent: Table) -> Param:
    if isinstance(raw, list):
        return _categorical(name, raw, parent, name)
    if not isinstance(raw, dict):
        return Param(name, "fixed", value=_checked_value(raw, parent, name))
    t = Table(raw, parent.path(name), parent.source)
    if "type" in t:
        kind = t.str("type", choices=TYPE_NAMES)
    elif "value" in t:
        kind = "fixed"
    elif "choices" in t:
        kind = "categorical"
    else:
        _check_keys(t, set().union(*_KEYS.values()))
        raise t.error(f"missing 'type' (one of {', '.join(TYPE_NAMES)})")
    _check_keys(t, _KEYS[kind])      # before the required keys: 'maxx' is named, not 'high'
    when = _parse_when(t) if "when" in t else None
    if kind == "fixed":
        p = Param(name, "fixed", value=_checked_value(t.raw("value"), t, "value"))
    elif kind == "categorical":
        p = _categorical(name, t.raw("choices"), t, "choices")
    elif kind == "int":
        p = _int_param(name, t)
    elif kind == "float":
        log = t.bool("log", False)
        if log and "step" in t:
            raise t.error("step cannot be combined with log = true", "step")
        p = _float_param(name, "loguniform" if log else "uniform", t)
    else:
        p = _float_param(name, kind, t)
    t.finish()
    return replace(p, when=when) if when else p


def _check_keys(t: Table, allowed: set[str]) -> None:
    """An unknown key is an error naming it, with the closest known key if there is one."""
    import difflib
    unknown = sorted(set(t.keys()) - allowed)
    if not unknown:
        return
    key = unknown[0]
    hint = _ALIASES.get(key) if _ALIASES.get(key) in allowed else None
    if hint is None:
        close = difflib.get_close_matches(key, sorted(allowed | set(_ALIASES)), n=1, cutoff=0.6)
        if close:
            hint = _ALIASES.get(close[0], close[0])
            hint = hint if hint in allowed else None
    more = f" (and {', '.join(unknown[1:])})" if len(unknown) > 1 else ""
    suggestion = f"; did you mean {hint!r}?" if hint else ""
    raise t.error(f"unknown key {key!r}{more}{suggestion} (this entry takes: "
                  f"{', '.join(sorted(allowed))})", key)


def _categorical(name: str, choices: Any, table: Table, key: str) -> Param:
    if not isinstance(choices, list) or not choices:
        raise table.error("expected a non-empty list of choices", key)
    for i, c in enumerate(choices):
        _checked_value(c, table, f"{key}[{i}]")
    encoded_json = any(not isinstance(c, _PRIMITIVE) for c in choices)
    encoded = [_to_json(c) if encoded_json else c for c in choices]
    if len({(type(c), c) for c in encoded}) != len(encoded):
        raise table.error("choices must be distinct", key)
    return Param(name, "categorical", choices=tuple(choices), json_choices=encoded_json)


def _checked_value(value: Any, table: Table, key: str) -> Any:
    """A value the objective and the result file can hold: JSON types, finite numbers."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise table.error("values must be numbers, strings, booleans, lists or tables "
                          "(no dates, no nan/inf)", key) from None
    return value


def _int_param(name: str, t: Table) -> Param:
    low, high = t.int("low"), t.int("high")
    step, log = t.int("step", 1, min=1), t.bool("log", False)
    if high < low:
        raise t.error(f"high ({high}) must be >= low ({low})", "high")
    if log and low < 1:
        raise t.error("log scale needs low >= 1", "low")
    if log and step != 1:
        raise t.error("step cannot be combined with log = true", "step")
    return Param(name, "int", low=low, high=high, step=step, log=log)


def _float_param(name: str, kind: str, t: Table) -> Param:
    low, high = t.float("low"), t.float("high")
    log = kind == "loguniform"
    step = t.float("step", None, positive=True) if not log else None
    if not high > low:
        raise t.error(f"high ({high}) must be > low ({low})", "high")
    if not math.isfinite(high - low):
        raise t.error(f"the range high - low overflows a double ({low} .. {high})", "high")
    if step is not None and step > high - low:
        raise t.error(f"step ({step}) is larger than the range high - low ({high - low})", "step")
    if log and low <= 0:
        raise t.error("loguniform needs low > 0", "low")
    return Param(name, kind, low=low, high=high, step=step, log=log)


def _parse_when(t: Table) -> Condition:
    w = t.table("when")
    parent = w.str("param")
    if ("equals" in w) == ("in" in w):
        raise w.error("give exactly one of 'equals' or 'in'")
    if "equals" in w:
        values = (w.raw("equals"),)
    else:
        values = w.raw("in")
        if not isinstance(values, list) or not values:
            raise w.error("expected a non-empty list of values", "in")
        values = tuple(values)
    w.finish()
    return Condition(parent, values)


def _order(params: dict[str, Param], table: Table) -> list[Param]:
    """Topological order (parents first), otherwise the file's order; rejects cycles."""
    done: dict[str, Param] = {}
    visiting: set[str] = set()

    def visit(p: Param) -> None:
        if p.name in done:
            return
        if p.name in visiting:
            raise table.error("conditional parameters form a cycle", p.name)
        visiting.add(p.name)
        if p.when is not None and p.when.parent in params:
            visit(params[p.when.parent])
        visiting.discard(p.name)
        done[p.name] = p

    for p in params.values():
        visit(p)
    return list(done.values())


def _check_condition(p: Param, params: dict[str, Param], table: Table) -> None:
    key = f"{p.name}.when"
    parent = params.get(p.when.parent)
    if parent is None:
        raise table.error(f"unknown parent parameter {p.when.parent!r}", key)
    if parent.kind in ("uniform", "loguniform"):
        raise table.error(f"parent {parent.name!r} is continuous; condition on a categorical, "
                          "int or fixed parameter", key)
    for v in p.when.values:
        if parent.kind == "categorical" and not any(_same(v, c) for c in parent.choices):
            raise table.error(f"{v!r} is not one of the choices of {parent.name!r}", key)
        if parent.kind == "int" and (isinstance(v, bool) or not isinstance(v, int)
                                     or not parent.low <= v <= parent.high):
            raise table.error(f"{v!r} is not an integer in the range of {parent.name!r}", key)
