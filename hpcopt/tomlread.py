"""Typed, strict reading of TOML tables with messages that name file and key.

Every config section of every campaign kind reads its table through
:class:`Table`, so unknown keys, wrong types and out-of-range values all give
the same kind of message: ``study.toml: hpo.n_trials: expected an integer >= 1, got -3``.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from pathlib import Path
from typing import Any, Iterable

from .errors import ConfigError

_MISSING = object()
#: a config is a few kB; anything this large is a mistake (e.g. a data file given as config)
MAX_CONFIG_BYTES = 16 * 2**20
#: tables and arrays nested deeper than this are refused (configs need about 5 levels;
#: tomllib recurses once per level and would end in a RecursionError)
MAX_NESTING = 32


def loads(text: str) -> dict:
    """tomllib.loads with a nesting limit: too deep a document raises TOMLDecodeError too,
    so callers that already handle invalid TOML handle it as well."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        data = None
    if data is None or nesting_depth(data) > MAX_NESTING:
        raise tomllib.TOMLDecodeError(f"tables or arrays nested deeper than {MAX_NESTING} "
                                      "levels")
    return data


def nesting_depth(value: Any) -> int:
    """Depth of nested tables/lists (a scalar is 0), without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_NESTING:
                break
            todo.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                 else item))
    return deepest


def load_toml(path: str | Path) -> tuple[dict, str]:
    """Read a TOML file; return (parsed dict, original text). Errors exit 2."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ConfigError("cannot read config file: not a regular file (a directory, pipe or "
                          "device)", source=str(path))
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file larger than {MAX_CONFIG_BYTES // 2**20} MiB",
                              source=str(path))
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", source=str(path)) from None
    return parse_toml_text(text, str(path)), text


def parse_toml_text(text: str, source: str) -> dict:
    """Parse TOML text; errors name `source` (exit 2)."""
    try:
        return loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", source=source) from None


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


class Table:
    """A view of one TOML table that remembers which keys were read.

    Call :meth:`finish` after reading: any key not read is reported as unknown.
    """

    def __init__(self, data: Any, key: str, source: str):
        self.key = key
        self.source = source
        if not isinstance(data, dict):
            raise self.error(f"expected a table, got {_type_name(data)}")
        self.data = data
        self._seen: set[str] = set()

    # -- errors -----------------------------------------------------------------
    def path(self, name: str | None = None) -> str:
        if not name:
            return self.key
        return f"{self.key}.{name}" if self.key else name

    def error(self, problem: str, name: str | None = None) -> ConfigError:
        return ConfigError(problem, key=self.path(name) or None, source=self.source)

    # -- access -----------------------------------------------------------------
    def __contains__(self, name: str) -> bool:
        return name in self.data

    def keys(self) -> list[str]:
        return list(self.data)

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        self._seen.add(name)
        if name not in self.data:
            if default is _MISSING:
                raise self._missing(name)
            return default
        return self.data[name]

    def _missing(self, name: str) -> ConfigError:
        """A missing required key; when a key not read yet looks like a misspelling of it
        (``maxx`` for ``max``), the error names that key: it is the one to fix."""
        unread = [k for k in self.data if k not in self._seen]
        typo = next((k for k in unread if closest(k, [name]) == name), None)
        if typo is None:
            return self.error("missing required key", name)
        return self.error(f"unknown key: {typo} (did you mean {name!r}? it is required and "
                          "missing)", typo)

    def table(self, name: str, default: Any = _MISSING) -> "Table":
        value = self.raw(name, {} if default is _MISSING else default)
        if value is None:
            return None  # type: ignore[return-value]
        return Table(value, self.path(name), self.source)

    def str(self, name: str, default: Any = _MISSING, choices: Iterable[str] | None = None) -> str:
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str):
            raise self.error(f"expected a string, got {_type_name(value)}", name)
        if choices is not None:
            choices = list(choices)
            if value not in choices:
                raise self.error(f"expected one of {', '.join(map(repr, choices))}, got {value!r}", name)
        return value

    def bool(self, name: str, default: Any = _MISSING) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.error(f"expected true or false, got {_type_name(value)}", name)
        return value

    def int(self, name: str, default: Any = _MISSING, *, min: int | None = None,
            max: int | None = None) -> int:
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected an integer, got {_type_name(value)} {value!r}", name)
        _check_range(self, name, value, min, max)
        return value

    def float(self, name: str, default: Any = _MISSING, *, min: float | None = None,
              max: float | None = None, positive: bool = False) -> float:
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        value = to_float(value, lambda problem: self.error(problem, name))
        _check_range(self, name, value, min, max)
        if positive and not value > 0:
            raise self.error(f"expected a number > 0, got {value!r}", name)
        return value

    def float_list(self, name: str, default: Any = _MISSING, *, min_len: int = 1) -> list[float]:
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, list):
            raise self.error(f"expected a list of numbers, got {_type_name(value)}", name)
        if len(value) < min_len:
            raise self.error(f"expected at least {min_len} values, got {len(value)}", name)
        return [to_float(v, lambda problem, i=i: self.error(problem, f"{name}[{i}]"))
                for i, v in enumerate(value)]

    def finish(self) -> None:
        """Refuse every key that was not read, each with the closest read key if one is
        close (the keys read are the table's vocabulary)."""
        unknown = sorted(set(self.data) - self._seen)
        if unknown:
            names = []
            for key in unknown:
                hint = closest(key, self._seen)
                names.append(f"{key} (did you mean {hint!r}?)" if hint else key)
            raise self.error(f"unknown key{'s' if len(unknown) > 1 else ''}: {', '.join(names)}",
                             unknown[0] if len(unknown) == 1 else None)


def closest(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate `name` most likely misspells (case-insensitive, difflib's ratio of at
    least `cutoff`), or None."""
    best, best_ratio = None, cutoff
    for c in sorted(candidates):
        if c == name:
            continue
        ratio = difflib.SequenceMatcher(None, name.lower(), c.lower()).ratio()
        if ratio > best_ratio or (best is None and ratio >= cutoff):
            best, best_ratio = c, ratio
    return best


def to_float(value: Any, error) -> float:
    """A finite float from a TOML int/float; `error(problem)` builds the exception."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"expected a number, got {_type_name(value)} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise error(f"expected a finite number, got {value!r}")
    return value


def _check_range(table: Table, name: str, value, lo, hi) -> None:
    if lo is not None and value < lo:
        raise table.error(f"expected a value >= {lo}, got {value!r}", name)
    if hi is not None and value > hi:
        raise table.error(f"expected a value <= {hi}, got {value!r}", name)
