"""Contiguous rank ranges: even split, the remainder to the first ranks."""

from __future__ import annotations


def rank_range(n_items: int, world_size: int, rank: int) -> tuple[int, int]:
    """Half-open range [start, stop) of items owned by `rank`.

    Ranks 0..r-1 (r = n_items % world_size) get one item more; ranks beyond the
    number of items get empty ranges.  A rank outside the world is an error.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of size {world_size}")
    if n_items < 0:
        raise ValueError(f"n_items must be >= 0, got {n_items}")
    base, extra = divmod(n_items, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def all_ranges(n_items: int, world_size: int) -> list[tuple[int, int]]:
    return [rank_range(n_items, world_size, r) for r in range(world_size)]


def chunks(start: int, stop: int, chunk_size: int):
    """Yield (a, b) sub-ranges of at most `chunk_size` items (streaming a rank's range)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    for a in range(start, stop, chunk_size):
        yield a, min(a + chunk_size, stop)
