import pytest
from hypothesis import given, strategies as st

from hpcopt.partition import all_ranges, chunks, rank_range


@given(n=st.integers(0, 10_000), size=st.integers(1, 300))
def test_ranges_cover_all_items_once_in_order(n, size):
    ranges = all_ranges(n, size)
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    for (a0, b0), (a1, b1) in zip(ranges, ranges[1:]):
        assert b0 == a1                      # contiguous, no overlap, no gap
    lengths = [b - a for a, b in ranges]
    assert sum(lengths) == n
    assert max(lengths) - min(lengths) <= 1  # even split
    # the remainder goes to the first ranks
    assert lengths == sorted(lengths, reverse=True)


def test_examples_from_the_dpa_guide():
    assert all_ranges(100, 4) == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert all_ranges(23, 4) == [(0, 6), (6, 12), (12, 18), (18, 23)]
    assert rank_range(2, 5, 4) == (2, 2)     # more ranks than items: empty range


@pytest.mark.parametrize("rank,size", [(4, 4), (-1, 4), (0, 0)])
def test_rank_outside_world_is_an_error(rank, size):
    with pytest.raises(ValueError):
        rank_range(10, size, rank)


@given(a=st.integers(0, 1000), length=st.integers(0, 1000), c=st.integers(1, 50))
def test_chunks_stream_a_range(a, length, c):
    parts = list(chunks(a, a + length, c))
    flat = [i for lo, hi in parts for i in range(lo, hi)]
    assert flat == list(range(a, a + length))
    assert all(hi - lo <= c for lo, hi in parts)
