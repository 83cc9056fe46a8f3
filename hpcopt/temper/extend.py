"""More rounds for a tempering campaign: `--resume` with a larger `rounds` continues the chains.

Nothing a round does depends on the planned number of rounds (the ladder adapts
during burn-in only, samples are numbered from the end of burn-in, the log Z
batches double as rounds come in), so a campaign extended from R to R' rounds
is, bit for bit, the campaign run for R' rounds at once.  Only the two
preallocated tables whose length follows `rounds` must grow: `rounds` and
`samples`.  :func:`extension_of` is the resume rule (only `rounds` may grow),
:func:`extend_file` grows the tables of an open result file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np

from ..errors import ResultFileError
from ..partition import rank_range
from ..store import schema
from ..store.resultfile import ResultStore, check_existing
from .config import TemperConfig, campaign_hash

ROUNDS, SAMPLES = "rounds", "samples"
FINAL_ATTR = "rounds_done"          # written at the end of a run: the end-of-run tables are valid
_GROWING = ".growing"               # suffix of a table being copied into its longer version
_SLICE = 65536                      # rows copied at a time (bounded memory)


def n_samples(config: TemperConfig) -> int:
    """Rows of the samples table: rounds >= burn_in, every `thin`."""
    return len(range(config.burn_in, config.rounds, config.thin))


def extension_of(path: Path, config: TemperConfig, seed: int) -> int | None:
    """For --resume: None when the file was written with this config, the file's number
    of rounds when this config differs from it only by more rounds; else ResultFileError."""
    attrs = check_existing(path, kind="temper", config_hash=None)
    stored = attrs.get(schema.ATTR_CONFIG_HASH)
    if stored == campaign_hash(config, seed):
        return None
    with h5py.File(path, "r", locking=False) as f:
        old_rounds = int(f[ROUNDS].shape[0])
    old = dataclasses.replace(config, rounds=old_rounds)
    if old_rounds < config.rounds and stored == campaign_hash(old, seed):
        return old_rounds
    raise ResultFileError(f"{path}: was written with a different config; --resume needs the "
                          "same config, except that temper.rounds may grow (use another -o "
                          "path, or --force to start over)")


def extend_file(store: ResultStore, old: TemperConfig, new: TemperConfig) -> None:
    """Grow the `rounds` and `samples` tables of `store` (open for writing) from `old`'s
    rounds to `new`'s; written rows are kept, the new rows are pending.  Every rank calls
    it (collective with parallel HDF5); ranks without a file handle do nothing.

    The end-of-run mark is removed: until the longer run finishes, readers take their
    statistics from the rounds written so far.
    """
    if new.rounds < old.rounds or dataclasses.replace(old, rounds=new.rounds) != new:
        raise ValueError("a campaign can only be extended by more rounds")
    f = store.file
    if f is None:
        return
    for name, n_rows in ((ROUNDS, new.rounds), (SAMPLES, n_samples(new))):
        _grow(store, f, name, n_rows)
    if FINAL_ATTR in f.attrs:
        del f.attrs[FINAL_ATTR]
    f.flush()


def _grow(store: ResultStore, f: h5py.File, name: str, n_rows: int) -> None:
    """Replace table `name` by a copy with `n_rows` rows (new rows pending)."""
    if name + _GROWING in f:            # a copy left by a run killed while extending
        del f[name + _GROWING]
    old = f[name]
    n_old = old.shape[0]
    if n_rows == n_old:
        return
    grown = f.create_dataset(name + _GROWING, shape=(n_rows,), dtype=old.dtype)
    for key, value in old.attrs.items():
        grown.attrs[key] = value
    lo, hi = 0, n_rows
    if store.parallel:                   # each rank copies and fills its share of the rows
        lo, hi = rank_range(n_rows, store.world.size, store.world.rank)
    for a in range(lo, hi, _SLICE):
        b = min(a + _SLICE, hi)
        rows = schema.empty_rows(old.dtype, np.arange(a, b))
        if a < n_old:
            kept = min(b, n_old)
            rows[:kept - a] = old[a:kept]
        grown[a:b] = rows
    f.flush()                            # the copy is complete before the original goes
    del f[name]
    f.move(name + _GROWING, name)
