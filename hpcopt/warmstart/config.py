"""The ``[warmstart]`` table of a sweep config -> :class:`WarmStartConfig`.

::

    [warmstart]
    history = "history.h5"          # the fit history (created by the first recorded fit)
    conditions = { temperature = 25.0, concentration = 0.08 }   # added to the data file's
    n_starts = 8                    # predicted starts, put first in the task list
    design_fraction = 0.5           # share of the normal design kept after them (0 < f <= 1)
    confidence_threshold = 0.25     # mean predicted uncertainty / parameter range above which
                                    # the prediction is not used (normal design instead)
    min_history = 5                 # fewer usable fits of this model: normal design
    record = true                   # add this fit to the history when the sweep completes

Every key is optional; unknown keys are errors naming the key and the file.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..tomlread import Table, to_float

TRENDS = ("linear", "none")


@dataclass(frozen=True)
class WarmStartConfig:
    """Validated [warmstart] settings (see the module docstring for the meaning of each)."""

    history: Path
    enabled: bool = True
    conditions: Mapping[str, float] = field(default_factory=dict)
    n_starts: int = 8
    design_fraction: float = 0.5
    confidence_threshold: float = 0.25
    min_history: int = 5
    range_margin: float = 0.1          # allowed extrapolation, as a fraction of each condition's range
    record: bool = True
    trend: str = "linear"              # linear trend + trees on its residuals, or trees alone
    n_trees: int = 100                 # random forest size
    n_boost: int = 50                  # gradient boosting stages per parameter
    spread: float = 1.0                # start sampling width, in predicted standard deviations
    seed: int | None = None            # None: the campaign seed ([run] seed)
    source: str = ""                   # config file, for messages

    def effective(self) -> dict:
        """The settings that shape the start list (for a config hash)."""
        d = asdict(self)
        d.pop("source")
        d["history"] = str(self.history)
        d["conditions"] = dict(self.conditions)
        return d


def parse_warmstart(table: Table | Mapping[str, Any], source: str = "",
                    base_dir: str | Path | None = None) -> WarmStartConfig:
    """Read and validate a [warmstart] table (a :class:`Table` or the raw dict).

    Relative ``history`` paths are taken from `base_dir` (the config file's directory).
    Raises ConfigError naming ``warmstart.KEY`` and the file.
    """
    t = table if isinstance(table, Table) else Table(table, "warmstart", source)
    source = source or t.source
    history = t.str("history", "history.h5")
    if not history.strip():
        raise t.error("expected a file path, got an empty string", "history")
    path = Path(history).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    conditions = _conditions(t)
    fraction = t.float("design_fraction", 0.5)
    if not 0.0 < fraction <= 1.0:
        raise t.error(f"expected a fraction in (0, 1] (the normal design is never dropped "
                      f"entirely), got {fraction!r}", "design_fraction")
    seed = t.raw("seed", None)
    if seed is not None:
        seed = t.int("seed", min=0, max=2**63 - 1)
    cfg = WarmStartConfig(
        history=path,
        enabled=t.bool("enabled", True),
        conditions=conditions,
        n_starts=t.int("n_starts", 8, min=1, max=100_000),
        design_fraction=fraction,
        confidence_threshold=t.float("confidence_threshold", 0.25, positive=True),
        min_history=t.int("min_history", 5, min=2),
        range_margin=t.float("range_margin", 0.1, min=0.0),
        record=t.bool("record", True),
        trend=t.str("trend", "linear", choices=TRENDS),
        n_trees=t.int("n_trees", 100, min=2, max=10_000),
        n_boost=t.int("n_boost", 50, min=1, max=10_000),
        spread=t.float("spread", 1.0, positive=True),
        seed=seed,
        source=source,
    )
    t.finish()
    return cfg


def _conditions(t: Table) -> dict[str, float]:
    """``conditions = { name = number, ... }``: finite numbers only."""
    c = t.table("conditions")
    out: dict[str, float] = {}
    for name in c.keys():
        value = c.raw(name)
        if isinstance(value, bool):
            raise c.error("expected a number, got a boolean", name)
        out[name] = to_float(value, lambda problem, name=name: c.error(problem, name))
        if not math.isfinite(out[name]):  # pragma: no cover - to_float refuses these
            raise c.error("expected a finite number", name)
    c.finish()
    return out
