"""Open a result file once for analysis: validation, the kind, its report hooks."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..campaign import registry
from .hooks import Loaded
from .tables import attrs_of, reading


@contextmanager
def open_loaded(path: str | Path) -> Iterator[Loaded]:
    """The file as a :class:`Loaded` (read-only, no locking: a campaign may still write it);
    a damaged or foreign file is a ResultFileError (exit 2)."""
    with reading(path) as f:
        attrs = attrs_of(f)
        family = attrs.get("kind")
        main = registry.get(family).main_table if family in registry.KINDS else None
        kind = registry.of_file(attrs, attrs_of(f[main]) if main in f else None, path)
        yield Loaded(Path(path), f, kind.name, kind.family, kind.main_table, kind.report)
