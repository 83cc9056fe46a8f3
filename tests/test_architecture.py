"""The package's structure: no import cycles, kinds known in one place (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hpctest import REPO

PACKAGE = REPO / "hpcopt"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """hpcopt modules `name` imports anywhere in its file (inside functions too)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = (".".join(package[:len(package) - node.level + 1] +
                             ([node.module] if node.module else []))
                    if node.level else node.module or "")
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                target = candidate if candidate in known else base
                if target in known and target != name:
                    out.add(target)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known and a.name != name}
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")
    (pkg / "c.py").write_text("from .b import f\n")
    known = {"pkg": pkg / "__init__.py", "pkg.a": pkg / "a.py", "pkg.b": pkg / "b.py",
             "pkg.c": pkg / "c.py"}
    graph = {m: imported(m, p, known) for m, p in known.items()}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_import_cycle_between_modules_of_hpcopt():
    known = modules()
    graph = {m: imported(m, p, known) for m, p in known.items()}
    assert cycles(graph) == []


#: the only modules that may name a campaign kind in a comparison
KIND_MODULES = {"campaign/registry.py", "sweep/kind.py", "temper/kind.py", "hpo/kind.py",
                "hpo/pbt/kind.py", "store/schema.py"}


#: names of variables and attributes that hold a kind or a subcommand
KIND_HOLDERS = ("kind", "command", "cmd", "family", "campaign")


def kind_comparisons(tree: ast.AST, names: set[str]) -> list[tuple[int, str]]:
    """(line, text) of comparisons of a kind-holding name with a kind's name (or a tuple of
    them): the if-chains over kinds that the registry replaces."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        literal = any(
            (isinstance(s, ast.Constant) and s.value in names) or
            (isinstance(s, (ast.Tuple, ast.List, ast.Set)) and
             any(isinstance(e, ast.Constant) and e.value in names for e in s.elts))
            for s in sides)
        holder = any(h in ast.unparse(s).lower() for s in sides for h in KIND_HOLDERS
                     if not isinstance(s, (ast.Constant, ast.Tuple, ast.List, ast.Set)))
        if literal and holder:
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_kind_comparison_finder_finds_if_chains():
    names = {"sweep", "hpo"}
    code = ("if kind == 'sweep': pass\nif cmd in ('sweep', 'demo'): pass\n"
            "if args.command != 'hpo': pass\nif 'sweep' in ctx.cache: pass\n"
            "if scheduler == 'hpo': pass\n")
    assert [line for line, _ in kind_comparisons(ast.parse(code), names)] == [1, 2, 3]


def test_no_if_chain_over_kind_names_outside_the_kinds():
    from hpcopt.campaign.registry import KINDS
    names = set(KINDS) | {k.family for k in KINDS.values()}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel not in KIND_MODULES:
            offenders += [f"{rel}:{line} {text}"
                          for line, text in kind_comparisons(ast.parse(path.read_text()), names)]
    assert offenders == []


def test_every_kind_is_registered_once_and_complete():
    from hpcopt.campaign.contract import CampaignKind
    from hpcopt.campaign.registry import KINDS, commands
    assert list(KINDS) == ["sweep", "temper", "hpo", "pbt"]
    for name, kind in KINDS.items():
        assert kind.name == name and isinstance(kind, CampaignKind)
        assert type(kind).plan is not CampaignKind.plan, name
        assert type(kind).run is not CampaignKind.run, name
        assert kind.main_table and kind.report is not None
    assert {c: [k.name for k in ks] for c, ks in commands().items()} == {
        "sweep": ["sweep"], "temper": ["temper"], "hpo": ["hpo", "pbt"]}


@pytest.mark.parametrize("module", ["hpcopt.report", "hpcopt.report.api", "hpcopt.cli"])
def test_analysis_imports_no_mpi(module):
    import subprocess
    import sys
    code = f"import sys, {module}; print('mpi4py' in sys.modules, 'optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.split()
    assert out == ["False", "False"]
