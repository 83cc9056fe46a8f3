"""Data files shipped inside the hpcopt package (hpcopt/data), named in a config as
``{hpcopt_data}/NAME`` so that a config copied anywhere still finds them.

The directory is found through importlib.resources, so it is the installed package's,
wherever pip put it (a relative ``../hpcopt/data`` only works inside a repository
checkout).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: the one placeholder a data path may start with
PLACEHOLDER = "{hpcopt_data}"


def data_dir() -> Path:
    """The installed package's data directory."""
    return Path(str(resources.files("hpcopt") / "data"))


def expand(path: str) -> str:
    """`path` with a leading ``{hpcopt_data}`` replaced by :func:`data_dir`; ValueError for
    any other ``{...}`` at the start (a misspelt placeholder would otherwise be a
    directory name)."""
    if path.startswith(PLACEHOLDER):
        rest = path[len(PLACEHOLDER):]
        if rest and not rest.startswith(("/", "\\")):
            raise ValueError(f"expected {PLACEHOLDER}/NAME, got {path!r}")
        return str(data_dir()) + rest
    if path.startswith("{") and "}" in path:
        name = path[:path.index("}") + 1]
        raise ValueError(f"unknown placeholder {name} (the bundled data directory is "
                         f"{PLACEHOLDER}, e.g. {PLACEHOLDER}/xpcs_demo.h5)")
    return path
