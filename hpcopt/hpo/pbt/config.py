"""The ``[hpo.pbt]`` table: population-based training settings (``[hpo] scheduler = "pbt"``).

    [hpo]
    scheduler = "pbt"
    direction = "minimize"
    trial_timeout = 600            # seconds per segment (optional)
    max_retries = 1                # re-run a failed segment before giving up on the member
    [hpo.pbt]
    population = 8                 # members trained side by side
    perturbation_interval = 10     # reported steps per segment (one farm task)
    max_steps = 200                # steps per member
    quantile_fraction = 0.25       # bottom fraction exploits the top fraction (0: never)
    resample_probability = 0.25    # explore: resample a value instead of perturbing it
    perturbation_factors = [0.8, 1.2]
    checkpoint_dir = "run_pbt"     # default: <output stem>_pbt next to the result file

The random streams come from ``[run] seed``. This module imports no other hpo module, so
config.py can import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ...tomlread import Table

#: [hpo] keys that only the Optuna scheduler reads: an error with scheduler = "pbt"
OPTUNA_ONLY_KEYS = ("sampler", "pruner", "n_trials", "deterministic", "study_name", "storage",
                    "multivariate", "constant_liar", "n_startup_trials")


@dataclass(frozen=True)
class PbtSettings:
    """The validated ``[hpo.pbt]`` table."""

    population: int = 8
    perturbation_interval: int = 10
    max_steps: int = 100
    quantile_fraction: float = 0.25
    resample_probability: float = 0.25
    perturbation_factors: tuple[float, ...] = (0.8, 1.2)
    checkpoint_dir: Path | None = None    # None: <output stem>_pbt next to the result file

    @property
    def segments_per_member(self) -> int:
        """Segments a member runs when it never jumps ahead by exploiting."""
        return math.ceil(self.max_steps / self.perturbation_interval)

    def checkpoint_root(self, output_path: str | Path) -> Path:
        """Where member checkpoints live for the result file `output_path`."""
        if self.checkpoint_dir is not None:
            return Path(self.checkpoint_dir)
        out = Path(output_path)
        return out.with_name(out.stem + "_pbt")


def parse_pbt_settings(t: Table, base_dir: Path, out: Path | None = None) -> PbtSettings:
    """Parse ``[hpo.pbt]`` (call with ``hpo_table.table("pbt", {})``). Raises ConfigError."""
    interval = t.int("perturbation_interval", 10, min=1)
    factors = t.float_list("perturbation_factors", [0.8, 1.2])
    for i, f in enumerate(factors):
        if not f > 0:
            raise t.error(f"factors must be > 0, got {f!r}", f"perturbation_factors[{i}]")
    checkpoint_dir = t.str("checkpoint_dir", None)
    if checkpoint_dir is not None and not checkpoint_dir:
        raise t.error("expected a directory path", "checkpoint_dir")
    settings = PbtSettings(
        population=t.int("population", 8, min=2),
        perturbation_interval=interval,
        max_steps=t.int("max_steps", 100, min=interval),
        quantile_fraction=t.float("quantile_fraction", 0.25, min=0.0, max=0.5),
        resample_probability=t.float("resample_probability", 0.25, min=0.0, max=1.0),
        perturbation_factors=tuple(float(f) for f in factors),
        checkpoint_dir=(base_dir / checkpoint_dir) if checkpoint_dir else None,
    )
    t.finish()
    return settings
