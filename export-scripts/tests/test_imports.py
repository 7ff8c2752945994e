"""No import cycles inside cxr_export, and every subcommand module imports.

Walks every module's imports with `ast` (module level AND inside functions: a function-local import that closes a
cycle is still a cycle, only deferred) and fails on any strongly connected component of more than one module.
`python export-scripts/tests/test_imports.py` runs the cycle check alone (no pytest, no torch: fast; npm test does)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

EXPORT_SCRIPTS = Path(__file__).resolve().parents[1]
PKG = EXPORT_SCRIPTS / "cxr_export"


def import_graph(pkg: Path) -> dict[str, set[str]]:
    mods = {p.stem for p in pkg.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for name in mods:
        deps: set[str] = set()
        for node in ast.walk(ast.parse((pkg / f"{name}.py").read_text(), filename=name)):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:  # from .x import y
                    deps.add(node.module.split(".")[0])
                elif node.level == 1:  # from . import x, y
                    deps.update(a.name for a in node.names)
                elif node.module and node.module.split(".")[0] == "cxr_export":
                    parts = node.module.split(".")
                    deps.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
            elif isinstance(node, ast.Import):
                for a in node.names:
                    parts = a.name.split(".")
                    if parts[0] == "cxr_export" and len(parts) > 1:
                        deps.add(parts[1])
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one member."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_no_import_cycles():
    graph = import_graph(PKG)
    assert len(graph) > 10, f"found only {sorted(graph)} in {PKG}"
    assert cycles(graph) == [], "import cycles in cxr_export: " + "; ".join(" <-> ".join(c) for c in cycles(graph))


def test_the_walker_finds_a_cycle(tmp_path):
    """The check can fail: two modules importing each other (one inside a function) are reported."""
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from . import a\n")
    (tmp_path / "c.py").write_text("from .a import x\n")
    assert cycles(import_graph(tmp_path)) == [["a", "b"]]


def test_every_subcommand_module_imports():
    from cxr_export.cli import SUBCOMMANDS

    res = subprocess.run([sys.executable, "-c", "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)",
                          *[m for _, m in SUBCOMMANDS]], cwd=EXPORT_SCRIPTS, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr


def test_a_broken_subcommand_fails_loudly(monkeypatch):
    import pytest

    from cxr_export import cli

    monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS, ("nope", "cxr_export.no_such_module")])
    with pytest.raises(cli.SubcommandImportError, match="'nope' subcommand .*cxr_export.no_such_module"):
        cli.build_parser()


if __name__ == "__main__":
    g = import_graph(PKG)
    found = cycles(g)
    print(f"cxr_export imports: {len(g)} modules, {sum(map(len, g.values()))} internal imports, {len(found)} cycles")
    for c in found:
        print("  import cycle: " + " <-> ".join(c), file=sys.stderr)
    sys.exit(1 if found else 0)
