"""Who talks to whom in dynamic mode: flat (every worker to rank 0), or one
sub-coordinator per node.

Per node: rank 0 serves the other ranks of its own node directly; on every other
node with two or more ranks the lowest rank becomes the sub-coordinator of the
rest (it evaluates nothing); a node with a single rank is a direct worker of
rank 0.  The global coordinator then exchanges messages per node, not per rank.

``hierarchy = "auto"`` chooses the nodes tree from :data:`AUTO_MIN_RANKS` ranks
on, when the job spans two nodes or more (one rank per node stops evaluating, a
small price at that size; below it one coordinator keeps up, see docs/scaling.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..mpi.transport import Transport

HIERARCHIES = ("auto", "flat", "nodes")
#: from this many ranks on, hierarchy = "auto" uses a sub-coordinator per node
AUTO_MIN_RANKS = 256


@dataclass
class Tree:
    children: dict[int, list[int]]                 # a coordinating rank -> its children
    parent: dict[int, int]                         # every rank but 0 -> whom it reports to
    members: dict[int, tuple[int, ...]] = field(default_factory=dict)
    # members: for each child of rank 0, the ranks that evaluate what is sent to it

    def role(self, rank: int) -> str:
        if rank == 0:
            return "coordinator"
        return "sub-coordinator" if rank in self.children else "worker"

    @property
    def sub_coordinators(self) -> list[int]:
        return sorted(r for r in self.children if r != 0)


def flat_tree(size: int) -> Tree:
    workers = list(range(1, size))
    return Tree({0: workers}, {r: 0 for r in workers}, {r: (r,) for r in workers})


def node_tree(groups: list[list[int]]) -> Tree:
    """The per-node tree of `groups` (the ranks of each node; rank 0 in one of them)."""
    top: list[int] = []
    children: dict[int, list[int]] = {}
    parent: dict[int, int] = {}
    members: dict[int, tuple[int, ...]] = {}
    for group in groups:
        group = sorted(group)
        if 0 in group or len(group) == 1:
            direct = [r for r in group if r != 0]
            top += direct
            members.update({r: (r,) for r in direct})
            parent.update({r: 0 for r in direct})
            continue
        leader, workers = group[0], group[1:]
        top.append(leader)
        children[leader] = workers
        members[leader] = tuple(workers)
        parent[leader] = 0
        parent.update({r: leader for r in workers})
    children[0] = sorted(top)
    return Tree(children, parent, members)


def build_tree(transport: Transport, hierarchy: str) -> Tree:
    """The tree of this job; collective (node_groups) when nodes may be used."""
    if hierarchy not in HIERARCHIES:
        raise ValueError(f"hierarchy must be one of {', '.join(HIERARCHIES)}, got {hierarchy!r}")
    size = transport.size
    if hierarchy == "flat" or size <= 2 or (hierarchy == "auto" and size < AUTO_MIN_RANKS):
        return flat_tree(size)
    groups = transport.node_groups()
    if hierarchy == "auto" and len(groups) < 2:
        return flat_tree(size)
    return node_tree(groups)
