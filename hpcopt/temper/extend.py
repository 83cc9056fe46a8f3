"""More rounds for a tempering campaign: `--resume` with a larger `rounds` continues the chains.

Nothing a round does depends on the planned number of rounds (the ladder adapts
during burn-in only, samples are numbered from the end of burn-in, the log Z
batches double as rounds come in), so a campaign extended from R to R' rounds
is, bit for bit, the campaign run for R' rounds at once.  Only the two
preallocated tables whose length follows `rounds` must grow: `rounds` and
`samples`.  The resume rule itself (only `temper.rounds` may grow) is the lifecycle's
(campaign/resume.py, the kind's `extendable`); :func:`extend_file` grows the tables.
"""

from __future__ import annotations

from ..store.resultfile import ResultStore
from .config import TemperConfig

ROUNDS, SAMPLES = "rounds", "samples"
FINAL_ATTR = "rounds_done"          # written at the end of a run: the end-of-run tables are valid


def n_samples(config: TemperConfig) -> int:
    """Rows of the samples table: rounds >= burn_in, every `thin`."""
    return len(range(config.burn_in, config.rounds, config.thin))


def extend_file(store: ResultStore, old_rounds: int, new: TemperConfig) -> None:
    """Grow the `rounds` and `samples` tables of `store` (open for writing) from
    `old_rounds` to `new.rounds`; written rows are kept, the new rows are pending.  Every
    rank calls it (collective with parallel HDF5); ranks without a file handle do nothing.

    The end-of-run mark is removed: until the longer run finishes, readers take their
    statistics from the rounds written so far.
    """
    if new.rounds < old_rounds:
        raise ValueError("a campaign can only be extended by more rounds")
    store.extend_table(ROUNDS, new.rounds)
    store.extend_table(SAMPLES, n_samples(new))
    store.del_attr("/", FINAL_ATTR)
