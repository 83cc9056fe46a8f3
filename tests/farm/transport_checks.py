"""The Transport contract, checked on every rank at once: threads (test_transport.py) and
MPI (the same function under mpiexec, run as a script)."""

from __future__ import annotations

import sys
import time

import numpy as np

from hpcopt.mpi.transport import ANY

TAG_A, TAG_B = 11, 12


def check_transport(t) -> str:
    """Every rank calls this at once (size >= 2); returns "ok" or raises AssertionError."""
    rank, size = t.rank, t.size
    # order between one pair and one tag; a copy travels (the sender may reuse its object)
    if rank != 0:
        payload = {"rank": rank, "data": np.arange(3) * rank}
        for i in range(5):
            payload["i"] = i
            t.send(payload, 0, TAG_A)
        t.send(("b", rank), 0, TAG_B)
    else:
        seen = {r: [] for r in range(1, size)}
        got_b = set()
        while sum(map(len, seen.values())) < 5 * (size - 1):
            m = t.recv(ANY, TAG_A, timeout=30)
            assert m is not None and m.tag == TAG_A
            seen[m.source].append(m.obj["i"])
            assert (m.obj["data"] == np.arange(3) * m.source).all()
        assert all(v == list(range(5)) for v in seen.values()), seen
        while len(got_b) < size - 1:
            m = t.recv(ANY, ANY, timeout=30)
            assert m.tag == TAG_B and m.obj == ("b", m.source)
            got_b.add(m.source)
        assert t.poll(ANY, ANY) is None
        t0 = time.monotonic()
        assert t.recv(ANY, ANY, timeout=0.2) is None
        assert time.monotonic() - t0 >= 0.19
    t.allreduce_max(0)          # a barrier: rank 0 has checked that nothing else came
    # a message waits for the matching receive; others are not consumed
    if rank == 1:
        t.send("second", 0, TAG_B)
        t.send("first", 0, TAG_A)
    if rank == 0:
        assert t.recv(1, TAG_A, timeout=30).obj == "first"
        assert t.recv(1, ANY, timeout=30).obj == "second"
    # collectives
    gathered = t.gather(rank * 10)
    if rank == 0:
        assert gathered == [r * 10 for r in range(size)]
    else:
        assert gathered is None
    assert t.allreduce_max(rank if rank != 1 else 99) == 99
    assert t.allreduce_max(0) == 0
    groups = t.node_groups()
    assert sorted(r for g in groups for r in g) == list(range(size))
    assert groups == sorted(groups, key=lambda g: g[0]) and all(g == sorted(g) for g in groups)
    t.flush()
    return "ok"


if __name__ == "__main__":       # under mpiexec: the MPI transport
    from mpi4py import MPI
    from hpcopt.mpi.transport import MpiTransport
    result = check_transport(MpiTransport(MPI.COMM_WORLD))
    groups = MpiTransport(MPI.COMM_WORLD).node_groups()
    if MPI.COMM_WORLD.Get_rank() == 0:
        print(result, groups)
    sys.exit(0)
