"""Import user callables named as ``package.module:function``.

The module is found through PYTHONPATH or the directory of the config file
(docs/sweep.md).  Nothing is evaluated: only importlib and getattr.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Callable

from .errors import ConfigError

_SPEC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def is_import_spec(text: str) -> bool:
    return bool(_SPEC.match(text))


def add_search_dir(directory: str | Path | None) -> None:
    """Make modules next to a config importable (idempotent, appended after PYTHONPATH)."""
    if directory is None:
        return
    d = str(Path(directory).resolve())
    if d not in sys.path:
        sys.path.append(d)


def load_callable(spec: str, *, key: str, source: str, base_dir: str | Path | None = None
                  ) -> Callable:
    """Return the callable named by `spec`; errors name the config key and file (exit 2)."""
    if not isinstance(spec, str) or not is_import_spec(spec):
        raise ConfigError(f"expected 'package.module:function', got {spec!r}", key=key, source=source)
    add_search_dir(base_dir)
    module_name, attr_path = spec.split(":")
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"cannot import module {module_name!r} ({exc}); put it on PYTHONPATH "
                          "or next to the config file", key=key, source=source) from None
    except Exception as exc:  # the user's module raised while importing
        raise ConfigError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}",
                          key=key, source=source) from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no attribute {attr_path!r}",
                              key=key, source=source) from None
    if not callable(obj):
        raise ConfigError(f"{spec!r} is not callable", key=key, source=source)
    return obj
