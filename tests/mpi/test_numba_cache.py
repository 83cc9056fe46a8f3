"""Numba's disk cache with many ranks starting at once: one rank per node compiles each
kernel and saves it, the others load it (no duplicate compiles, no cache races)."""

import collections
import re
import shutil

import pytest

from hpctest import REPO, run

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("kind, config", [("sweep", "sweep-nist.toml"),
                                          ("temper", "temper-ising.toml")])
def test_each_kernel_is_compiled_once_per_node(tmp_path, kind, config):
    shutil.copytree(REPO / "examples", tmp_path / "ex")
    proc = run([kind, tmp_path / "ex" / config, "-q"], n=3, check=True,
               NUMBA_CACHE_DIR=tmp_path / "cache", NUMBA_DEBUG_CACHE="1")
    saved = re.findall(r"\[cache\] data saved to '([^']+)'", proc.stdout + proc.stderr)
    assert saved, proc.stdout[-2000:]
    counts = collections.Counter(saved)
    assert max(counts.values()) == 1, counts          # never compiled twice
    loaded = re.findall(r"\[cache\] data loaded from", proc.stdout + proc.stderr)
    assert loaded                                      # the other ranks used the cache
