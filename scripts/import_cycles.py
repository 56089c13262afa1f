"""Print every import cycle among the modules of console, builds, registry and fleet; exit 1 if there is one.

Function-local imports count (grimp records every import statement, wherever it is), as do imports under
`if TYPE_CHECKING:` unless --exclude-type-checking is given (import-linter counts them too). Two kinds of cycle:
- between modules: a strongly connected component of more than one module in the import graph;
- between siblings: the children of one package (or the four packages themselves), each taken with everything
  under it, that import each other: `console.throttle -> console.accounts.usernames` and
  `console.accounts.forms -> console.throttle` are no cycle between modules, but one between `console.throttle`
  and `console.accounts` (what import-linter's `acyclic_siblings` contract reports).
For each cycle the script prints its members and one shortest loop through them, with the line of one import on
every step.

    .venv/bin/python scripts/import_cycles.py [--exclude-type-checking] [--modules-only] [package ...]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from itertools import pairwise
from pathlib import Path

import grimp

PACKAGES = ("console", "builds", "registry", "fleet")


def strongly_connected_components(successors: Mapping[str, Iterable[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (the graph is deep enough for Python's recursion limit to matter)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    edges = {node: sorted(successors[node]) for node in successors}
    for root in sorted(edges):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(edges[root]))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def shortest_loop(successors: Mapping[str, Iterable[str]], component: set[str]) -> list[str]:
    """One shortest loop from the component's first member back to it, inside the component."""
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(set(successors[node]) & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [start]


def line_of(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    if not details:
        return f"{importer} -> {imported}"
    detail = details[0]
    return f"{importer} -> {imported} (line {detail['line_number']}: {detail['line_contents']})"


def module_cycles(graph: grimp.ImportGraph) -> list[str]:
    successors = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    found = []
    for component in sorted((c for c in strongly_connected_components(successors) if len(c) > 1), key=min):
        lines = [f"modules {', '.join(sorted(component))}:"]
        loop = shortest_loop(successors, component)
        lines += [f"    {line_of(graph, importer, imported)}" for importer, imported in pairwise(loop)]
        found.append("\n".join(lines))
    return found


def _unit(module: str, depth: int) -> str:
    return ".".join(module.split(".")[:depth])


def sibling_cycles(graph: grimp.ImportGraph, packages: Iterable[str]) -> list[str]:
    """Cycles among the children of every package, and among the top packages themselves."""
    parents: dict[str, set[str]] = {"": set(packages)}
    for module in graph.modules:
        if graph.find_children(module):
            parents[module] = set(graph.find_children(module))
    found = []
    for parent in sorted(parents):
        children = parents[parent]
        if len(children) < 2:
            continue
        depth = parent.count(".") + 2 if parent else 1
        # One example import for every edge between two children.
        examples: dict[tuple[str, str], tuple[str, str]] = {}
        for module in graph.modules:
            source = _unit(module, depth)
            if source not in children:
                continue
            for imported in graph.find_modules_directly_imported_by(module):
                target = _unit(imported, depth)
                if target in children and target != source:
                    examples.setdefault((source, target), (module, imported))
        successors: dict[str, set[str]] = {child: set() for child in children}
        for source, target in examples:
            successors[source].add(target)
        for component in sorted((c for c in strongly_connected_components(successors) if len(c) > 1), key=min):
            where = f"in {parent}" if parent else "between top packages"
            lines = [f"siblings {where}: {', '.join(sorted(component))}:"]
            loop = shortest_loop(successors, component)
            lines += [f"    {source} -> {target}, e.g. {line_of(graph, *examples[source, target])}"
                      for source, target in pairwise(loop)]
            found.append("\n".join(lines))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", default=list(PACKAGES))
    parser.add_argument("--exclude-type-checking", action="store_true",
                        help="leave out imports under `if TYPE_CHECKING:`")
    parser.add_argument("--modules-only", action="store_true", help="report cycles between modules only")
    options = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    graph = grimp.build_graph(*options.packages, exclude_type_checking_imports=options.exclude_type_checking,
                              cache_dir=None)
    cycles = module_cycles(graph)
    if not options.modules_only:
        cycles += sibling_cycles(graph, options.packages)
    for number, cycle in enumerate(cycles, 1):
        print(f"cycle {number}: {cycle}")
    names = ", ".join(options.packages)
    if cycles:
        print(f"{len(cycles)} import cycle(s) among {names}")
        return 1
    print(f"no import cycles among {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
