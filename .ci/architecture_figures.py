"""Print the structure figures quoted in issue 10's closing note.

Counts, over ``src/billbyte``: import cycles between top-level packages (strongly connected
components of the package graph), module-level cycles, imports placed inside functions, and the
largest files.  Run: ``.venv/bin/python .ci/architecture_figures.py``.
"""

from __future__ import annotations

import ast
import pathlib
import sys

import grimp
import networkx as nx

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def main() -> None:
    graph = grimp.build_graph("billbyte")
    packages = nx.DiGraph()
    modules = nx.DiGraph()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            modules.add_edge(importer, imported)
            a, b = package_of(importer), package_of(imported)
            if a != b and "billbyte" not in (a, b):
                packages.add_edge(a, b)
    package_cycles = [sorted(c) for c in nx.strongly_connected_components(packages) if len(c) > 1]
    module_cycles = [sorted(c) for c in nx.strongly_connected_components(modules) if len(c) > 1]
    print(f"package cycles: {len(package_cycles)}")
    for cycle in package_cycles:
        print("   ", " <-> ".join(cycle))
    print(f"module cycles: {len(module_cycles)}")
    for cycle in module_cycles:
        print("   ", " <-> ".join(cycle))
    local_imports = []
    for path in sorted((SRC / "billbyte").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, (ast.Import, ast.ImportFrom)):
                        local_imports.append((path.relative_to(SRC), inner.lineno))
    print(f"function-local imports: {len(local_imports)}")
    for path, line in local_imports:
        print(f"    {path}:{line}")
    sizes = sorted(
        (
            (len(p.read_text().splitlines()), p.relative_to(SRC))
            for p in (SRC / "billbyte").rglob("*.py")
        ),
        reverse=True,
    )
    print("largest files:")
    for lines, path in sizes[:10]:
        print(f"    {lines:5d} {path}")


if __name__ == "__main__":
    main()
