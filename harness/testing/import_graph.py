"""The import graph of harness/ between its packages, checked for cycles.

Every `import harness...` counts, at module level or inside a function (a cycle hidden in a
function is still a cycle); imports under `if TYPE_CHECKING:` do not (they never run).
Prints the packages layer by layer, bottom first, and exits 1 if there is a cycle.

    python -m harness.testing.import_graph
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the harness package


def unit(module: str) -> str:
    """harness.study._study -> study; harness.metrics -> metrics."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "harness"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("harness"))
        stack.extend(ast.iter_child_nodes(node))
    return found


def graph() -> dict[str, set[str]]:
    """Package -> the packages it imports (itself left out)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        source = unit(module)
        edges[source]
        for target in runtime_imports(ast.parse(path.read_text())):
            if unit(target) not in (source, "harness"):
                edges[source].add(unit(target))
    return dict(edges)


def module_cycles() -> list[str]:
    """Modules of one package that import each other (directly or round a loop)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        if module.endswith("__init__"):
            continue
        for target in runtime_imports(ast.parse(path.read_text())):
            same_package = target.rsplit(".", 1)[0] == module.rsplit(".", 1)[0]
            if same_package and target != module:
                edges[module].add(target)
    cyclic = []
    for start in edges:
        seen, todo = set(), list(edges[start])
        while todo:
            node = todo.pop()
            if node == start:
                cyclic.append(start)
                break
            if node not in seen:
                seen.add(node)
                todo.extend(edges.get(node, ()))
    return sorted(cyclic)


def layers(edges: dict[str, set[str]]) -> tuple[list[list[str]], set[str]]:
    """Packages in layers (each imports only lower ones), and those left in a cycle."""
    placed: set[str] = set()
    result: list[list[str]] = []
    while True:
        layer = sorted(p for p in edges if p not in placed and edges[p] <= placed)
        if not layer:
            return result, set(edges) - placed
        result.append(layer)
        placed.update(layer)


def main() -> int:
    edges = graph()
    found, cyclic = layers(edges)
    for depth, layer in enumerate(found):
        for package in layer:
            uses = ", ".join(sorted(edges[package])) or "-"
            print(f"layer {depth}: {package:<10} imports {uses}")
    looped = module_cycles()
    if cyclic or looped:
        print(f"CYCLE among: {', '.join(sorted(cyclic) + looped)}")
        return 1
    print(f"no cycles: {len(edges)} packages in {len(found)} layers, none within a package")
    return 0


if __name__ == "__main__":
    sys.exit(main())
