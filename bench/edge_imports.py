#!/usr/bin/env python3
"""The import graph of pullzone's edge modules and of its top-level packages, read from
the source with `ast` (nothing is imported or run), with any cycle reported.

    python3 bench/edge_imports.py                  # src/ next to bench/
    python3 bench/edge_imports.py --src /other/checkout/src

Prints:
- every module of src/pullzone/edge and the edge modules it imports, then the modules in
  layers (a module imports only modules of lower layers; possible only without cycles);
- every top-level package (edge, cache, spec, zones, control, bus, server, cli, client)
  and top-level module (config, sqlite, ...) and the others it imports, with the
  importing modules in parentheses;
- the cycles in either graph, each as a path of imports;
- the line count of each edge module and their total, as `wc -l` counts them.

An import counts wherever it is: at module level, in a function (`[lazy]`: only there)
or under `if TYPE_CHECKING:` (`[type]`: only there; it runs under a type checker only).
Every kind counts toward a cycle, unless `--runtime-only`, which leaves `[type]` imports
out of the cycle check. Exit status 1 when there is a cycle, 0 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = "pullzone"
EDGE = "edge"
PACKAGES = ("edge", "cache", "spec", "zones", "control", "bus", "server", "cli", "client")
RUNTIME, LAZY, TYPE = "runtime", "lazy", "type"  # strongest first
MARK = {RUNTIME: "", LAZY: " [lazy]", TYPE: " [type]"}

Graph = dict[str, dict[str, str]]  # node -> {imported node: kind}


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(
    body: list[ast.stmt], kind: str = RUNTIME
) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement under `body`, with the kind of place it is in."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, kind
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _imports(node.body, TYPE if kind == RUNTIME else kind)
            yield from _imports(node.orelse, kind)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _imports(node.body, LAZY if kind == RUNTIME else kind)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    for child in children:
                        if isinstance(child, ast.ExceptHandler | ast.match_case):
                            yield from _imports(child.body, kind)
                        elif isinstance(child, ast.stmt):
                            yield from _imports([child], kind)


def imported_modules(path: Path, name: str, known: set[str]) -> dict[str, str]:
    """The pullzone modules `path` (module `name`) imports, each with its strongest kind."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, str] = {}

    def add(target: str, kind: str) -> None:
        # The longest known module that `target` names (a name imported from a module
        # is that module).
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found[target] = _stronger(found.get(target), kind)

    for node, kind in _imports(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, kind)
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        if origin != ROOT and not origin.startswith(ROOT + "."):
            continue
        for alias in node.names:
            submodule = f"{origin}.{alias.name}"
            add(submodule if submodule in known else origin, kind)
    return found


def module_graph(src: Path) -> tuple[Graph, dict[str, Path]]:
    files = {module_name(p, src): p for p in sorted((src / ROOT).rglob("*.py"))}
    known = set(files)
    return {name: imported_modules(path, name, known) for name, path in files.items()}, files


def _stronger(a: str | None, b: str) -> str:
    order = [RUNTIME, LAZY, TYPE]
    return b if a is None or order.index(b) < order.index(a) else a


def top_of(module: str) -> str | None:
    """The top-level package or module of a pullzone module (None: pullzone itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def package_graph(modules: Graph) -> tuple[Graph, dict[tuple[str, str], set[str]]]:
    graph: Graph = {}
    via: dict[tuple[str, str], set[str]] = {}
    for module, targets in modules.items():
        top = top_of(module)
        if top is None or top == "__main__":
            continue
        graph.setdefault(top, {})
        for target, kind in targets.items():
            other = top_of(target)
            if other is None or other == top:
                continue
            graph[top][other] = _stronger(graph[top].get(other), kind)
            via.setdefault((top, other), set()).add(module.split(".", 2)[-1])
    return graph, via


def cycles(graph: Graph, runtime_only: bool) -> list[list[str]]:
    """One cycle (a path that ends where it starts) per strongly connected component of
    more than one node, or per node that imports itself (Tarjan's algorithm)."""
    edges = {
        n: sorted(t for t, k in ts.items() if t in graph and not (runtime_only and k == TYPE))
        for n, ts in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges[node]:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    found = []
    for component in components:
        members = set(component)
        start = component[0]
        # Breadth-first from start's targets back to start, within the component.
        previous: dict[str, str] = {}
        queue = [start]
        while queue:
            node = queue.pop(0)
            for target in edges[node]:
                if target == start:
                    path = [start]
                    while node != start:
                        path.append(node)
                        node = previous[node]
                    found.append([start, *reversed(path[1:]), start])
                    queue = []
                    break
                if target in members and target not in previous:
                    previous[target] = node
                    queue.append(target)
    return found


def layers(graph: Graph) -> list[list[str]] | None:
    """Layer 0: nodes importing none of the graph's nodes; layer k: those whose imports
    are all in lower layers. None when a cycle makes that impossible."""
    level: dict[str, int] = {}
    remaining = set(graph)
    while remaining:
        ready = {n for n in remaining if all(t in level for t in graph[n] if t in graph)}
        if not ready:
            return None
        for n in ready:
            level[n] = 1 + max((level[t] for t in graph[n] if t in graph), default=-1)
        remaining -= ready
    out: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for n, k in level.items():
        out[k].append(n)
    return [sorted(names) for names in out]


def short(module: str) -> str:
    return module.removeprefix(f"{ROOT}.{EDGE}.") if module != f"{ROOT}.{EDGE}" else "__init__"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--src",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "src",
        help="the folder holding pullzone/ (default: src/ next to bench/)",
    )
    parser.add_argument(
        "--runtime-only", action="store_true", help="leave TYPE_CHECKING imports out of cycles"
    )
    args = parser.parse_args()
    src = args.src.resolve()
    if not (src / ROOT / EDGE).is_dir():
        parser.error(f"{src / ROOT / EDGE} is not a directory")
    modules, files = module_graph(src)
    prefix = f"{ROOT}.{EDGE}"
    edge: Graph = {
        short(m): {short(t): k for t, k in sorted(ts.items()) if t.startswith(prefix + ".")}
        for m, ts in sorted(modules.items())
        if m == prefix or m.startswith(prefix + ".")
    }
    print(f"edge modules ({len(edge)}, {src / ROOT / EDGE}): module -> the edge modules it imports")
    print("  [lazy]: imported only inside a function; [type]: only under TYPE_CHECKING")
    width = max(map(len, edge))
    for name, targets in edge.items():
        listed = ", ".join(t + MARK[k] for t, k in targets.items()) or "-"
        print(f"  {name:<{width}} -> {listed}")
    importers = {t for ts in edge.values() for t in ts}
    print(f"  imported by no edge module: {', '.join(sorted(set(edge) - importers)) or '-'}")
    edge_layers = layers(edge)
    if edge_layers is not None:
        print("edge layers (each module imports only modules of lower layers):")
        for k, names in enumerate(edge_layers):
            print(f"  {k}: {', '.join(names)}")

    packages, via = package_graph(modules)
    groups = {
        "packages": [p for p in PACKAGES if p in packages],
        "modules": sorted(set(packages) - set(PACKAGES)),
    }
    order = groups["packages"] + groups["modules"]
    print()
    print(f"pullzone's top-level packages and modules ({src / ROOT}) -> what each imports")
    print("  (the importing modules in parentheses; [lazy], [type] as above)")
    width = max(map(len, order))
    for group, names in groups.items():
        if not names:
            continue
        print(f"  {group}:")
        for name in names:
            targets = packages[name]
            listed = ", ".join(
                f"{t}{MARK[targets[t]]} ({', '.join(sorted(via[(name, t)]))})"
                for t in sorted(targets, key=order.index)
            )
            print(f"    {name:<{width}} -> {listed or '-'}")
    package_layers = layers(packages)
    if package_layers is not None:
        print("package and module layers:")
        for k, names in enumerate(package_layers):
            print(f"  {k}: {', '.join(names)}")

    print()
    found = [("edge modules", c, edge) for c in cycles(edge, args.runtime_only)]
    found += [("packages", c, packages) for c in cycles(packages, args.runtime_only)]
    scope = " (TYPE_CHECKING imports left out)" if args.runtime_only else ""
    if not found:
        print(f"cycles{scope}: none")
    for where, cycle, graph in found:
        steps = " -> ".join(
            cycle[0:1] + [f"{b}{MARK[graph[a][b]]}" for a, b in itertools.pairwise(cycle)]
        )
        print(f"CYCLE{scope} among {where}: {steps}")

    print()
    print("lines (wc -l):")
    total = 0
    paths = [p for m, p in sorted(files.items()) if m == prefix or m.startswith(prefix + ".")]
    counts = [(p.read_bytes().count(b"\n"), p) for p in sorted(paths)]
    width = len(str(sum(n for n, _ in counts)))
    for n, path in counts:
        total += n
        shown = os.path.relpath(path)
        if shown.startswith(".."):
            shown = str(path)
        print(f" {n:>{width}} {shown}")
    print(f" {total:>{width}} total")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
