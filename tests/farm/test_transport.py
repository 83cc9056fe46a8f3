"""The transport contract on threads and under mpiexec; node groups; TaskBatch on the wire."""

import pickle
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from hpctest import env, mpiexec, PY
from transport_checks import check_transport
from hpcopt.farm import TaskBatch, Task
from hpcopt.farm.tasks import TaskQueue, concat_rows, pack_rows, unpack_rows
from hpcopt.farm.tree import build_tree, flat_tree, node_tree
from hpcopt.mpi.transport import (ThreadedNetwork, TransportClosed, blocks, node_size_override,
                                  run_threaded)
from hpcopt.store import dtypes, schema

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("size, node_size", [(2, None), (3, None), (5, 2)])
def test_threaded_transport_keeps_the_contract(size, node_size):
    assert run_threaded(size, check_transport, node_size=node_size) == ["ok"] * size


@pytest.mark.mpi
@pytest.mark.parametrize("n, node_size", [(2, None), (3, None), (3, "2")])
def test_mpi_transport_keeps_the_contract(n, node_size):
    extra = {} if node_size is None else {"HPCOPT_NODE_SIZE": node_size}
    proc = subprocess.run([mpiexec(), "-n", str(n), PY, str(HERE / "transport_checks.py")],
                          env=env(**extra), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result, groups = proc.stdout.split(" ", 1)
    assert result == "ok"
    want = [[0, 1], [2]] if node_size else [list(range(n))]    # one machine: one node
    assert eval(groups) == want   # noqa: S307 - our own script's printed list


def test_a_failing_rank_releases_the_others_instead_of_hanging():
    def main(t):
        if t.rank == 1:
            raise ValueError("rank 1 fails")
        t.recv()              # would wait forever
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="rank 1 fails"):
        run_threaded(3, main, timeout=30)
    assert time.monotonic() - t0 < 5


def test_a_network_gives_up_after_its_timeout():
    with pytest.raises(TransportClosed, match="timed out"):
        run_threaded(2, lambda t: t.recv() if t.rank == 0 else None, timeout=0.3)


def test_node_size_override(monkeypatch):
    monkeypatch.delenv("HPCOPT_NODE_SIZE", raising=False)
    assert node_size_override() is None
    monkeypatch.setenv("HPCOPT_NODE_SIZE", "4")
    assert node_size_override() == 4
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv("HPCOPT_NODE_SIZE", bad)
        with pytest.raises(ValueError, match="positive integer"):
            node_size_override()
    assert blocks(5, 2) == [[0, 1], [2, 3], [4]]


def test_node_tree_puts_a_sub_coordinator_on_every_other_node():
    tree = node_tree([[0, 1, 2], [3, 4, 5, 6], [7], [8, 9]])
    assert tree.children[0] == [1, 2, 3, 7, 8]
    assert tree.children[3] == [4, 5, 6] and tree.children[8] == [9]
    assert tree.parent[4] == 3 and tree.parent[3] == 0 and tree.parent[7] == 0
    assert tree.members[3] == (4, 5, 6) and tree.members[7] == (7,)
    assert [tree.role(r) for r in (0, 3, 4, 7)] == ["coordinator", "sub-coordinator",
                                                     "worker", "worker"]
    # groups in any order and rank order inside (MPI placements need not be blocks)
    scattered = node_tree([[1, 3, 5], [0, 2, 4]])
    assert scattered.children == {0: [1, 2, 4], 1: [3, 5]}
    assert scattered.parent[5] == 1 and scattered.members[1] == (3, 5)
    assert flat_tree(4).children == {0: [1, 2, 3]}


def test_auto_uses_nodes_only_for_big_jobs_on_several_nodes():
    def tree_of(size, node_size, hierarchy):
        net = ThreadedNetwork(size, node_size=node_size)
        return net.run(lambda t: build_tree(t, hierarchy).sub_coordinators)[0]
    assert tree_of(8, 4, "flat") == [] and tree_of(8, 4, "nodes") == [4]
    assert tree_of(8, 4, "auto") == []                 # fewer than AUTO_MIN_RANKS
    assert tree_of(300, 100, "auto") == [100, 200]
    assert tree_of(300, None, "auto") == []            # one node


def test_task_batches_travel_as_bytes_and_keep_everything():
    plain = TaskBatch(np.arange(5, 10))
    assert plain.attempts is None and plain.payloads is None
    state = plain.__getstate__()
    assert isinstance(state[0], bytes) and state[1] is None
    back = pickle.loads(pickle.dumps(plain))
    assert back.ids.tolist() == list(range(5, 10)) and back.tasks()[0] == Task(5)
    rich = TaskBatch.of([Task(1, 2, {"p": 1}, 3), Task(4)])
    back = pickle.loads(pickle.dumps(rich))
    assert back.tasks() == [Task(1, 2, {"p": 1}, 3), Task(4, 0, None, -1)]
    both = TaskBatch.concat([plain, rich])
    assert [t.task_id for t in both.tasks()] == [5, 6, 7, 8, 9, 1, 4]
    assert both.tasks()[5] == Task(1, 2, {"p": 1}, 3) and both.tasks()[0] == Task(5)
    head, tail = both.split(6)
    assert len(head) == 6 and tail.tasks() == [Task(4)]


def test_task_queue_hands_out_fresh_runs_and_single_tasks():
    q = TaskQueue()
    q.add(TaskBatch(np.arange(6)))
    q.add(TaskBatch.of([Task(10, 1, None, 2)]))
    assert len(q) == 7
    assert q.take_fresh(4).tolist() == [0, 1, 2, 3] and len(q) == 3
    assert q.pop() == Task(4) and q.take_fresh(9).tolist() == [5]
    assert q.take_fresh(9).tolist() == []               # a retry: one by one
    assert q.pop() == Task(10, 1, None, 2) and len(q) == 0
    q.push_front(TaskBatch([7, 8]))
    assert q.take_fresh(1).tolist() == [7] and len(q) == 1


def test_rows_on_the_wire_and_concatenated():
    dtype = dtypes.sweep_dtype(2)
    rows = schema.empty_rows(dtype, [3, 1, 2])
    rows["message"][1] = b"broken"
    packed = pack_rows(rows)
    assert isinstance(packed, bytes)
    back = unpack_rows(packed, dtype)
    assert back.tobytes() == rows.tobytes() and back.flags.writeable
    parts = [schema.empty_rows(dtype, [i]) for i in range(50)]
    assert concat_rows(parts, dtype).tobytes() == np.concatenate(parts).tobytes()
    hpo = np.dtype([("task_id", "<i8"), ("outcome", object), ("wall", "<f8")])
    obj_rows = np.array([(1, "text", 0.5), (2, "", 1.5)], dtype=hpo)
    raw, columns = pack_rows(obj_rows)     # objects travel as lists, the rest as bytes
    assert isinstance(raw, bytes) and columns == [["text", ""]]
    back = unpack_rows(pack_rows(obj_rows), hpo)
    assert back.dtype == hpo and back.tolist() == obj_rows.tolist()
    assert unpack_rows(pack_rows(obj_rows[:0]), hpo).shape == (0,)
    assert concat_rows([obj_rows, obj_rows], hpo)["outcome"].tolist() == ["text", ""] * 2
