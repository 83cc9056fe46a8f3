"""Package facades that import nothing until a name is used (PEP 562).

A package's ``__init__`` that imported its modules would load them (numba, Optuna, ...)
whenever any one of them is imported, and could hide import cycles behind the package;
``__getattr__ = lazy_names(__name__, {...})`` keeps ``from package import Name`` working
without either.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable


def lazy_names(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[name]`` (a relative module name) from
    `package` on first use of `name`."""
    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(import_module(names[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__
