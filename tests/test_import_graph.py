"""The import graph read from the source (module-level and in-function imports, as ``ast`` sees them): no circle
inside a part, and platform/'s wings import only their own wing and the wings below it (docs/architecture.md).

``tests/test_import_rule.py`` checks the rule between the four parts; this test checks inside them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("platform", "trainables", "search", "deploy")

# platform/'s wings, lowest first: a module may import its own wing and the wings before it, never one after.
WINGS = (
    "infra",  # errors, processes, Ray cluster, storage, local services: nothing of the search's meaning
    "spec",  # the spec schema, --set, the search folder's state file
    "tracking",  # MLflow runs and their tag names, trial run names, the ranking of trials, how a value is shown
    "registry",  # re-runs, intervals, registration and the promotion gate
    "views",  # what a person sees: the quiet console, progress lines, the outcome, the run description, the report
    "run",  # running a search: the runner, Ray Jobs, the dry run, the quickstart
    "cli",  # the mritune command line
)


def _modules() -> dict[str, Path]:
    modules = {}
    for part in PARTS:
        for path in (ROOT / part).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules["mritune." + dotted.removesuffix(".__init__")] = path
    return modules


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The mritune modules ``module`` imports anywhere in its source (a name inside a module counts as the module)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {module: _imports(module, path, modules) for module, path in modules.items()}


def _part(module: str) -> str:
    return module.split(".")[1]


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def _wing(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and parts[1] == "platform" else None


def test_no_import_circle_inside_a_part():
    graph = _graph()
    inside = {module: {target for target in targets if _part(target) == _part(module)}
              for module, targets in graph.items()}
    assert not _circles(inside), "import circles: " + "; ".join(" <-> ".join(c) for c in _circles(inside))


def test_every_platform_module_is_in_a_wing_with_a_docstring():
    modules = [m for m in _modules() if _part(m) == "platform"]
    assert modules
    loose = [m for m in modules if _wing(m) is None and m.count(".") >= 2 and m.split(".")[2] not in WINGS]
    assert not loose, f"platform modules outside the wings {WINGS}: {loose}"
    for wing in WINGS:
        init = ROOT / "platform" / wing / "__init__.py"
        assert init.is_file(), f"platform/{wing}/ is not a package"
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring and len(docstring) > 80, f"platform/{wing}/__init__.py needs a paragraph saying what it is"


def test_wings_import_only_their_own_and_lower_wings():
    against = []
    for module, targets in _graph().items():
        wing = _wing(module)
        if wing is None:
            continue
        for target in targets:
            other = _wing(target)
            if other is not None and WINGS.index(other) > WINGS.index(wing):
                against.append(f"{module} ({wing}) imports {target} ({other})")
    assert not against, "imports against the wing order " + " < ".join(WINGS) + ":\n" + "\n".join(sorted(against))


def test_the_circle_finder_finds_a_circle():
    """The check above could not fail if the finder missed circles: it must see one in a graph that has one."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


if __name__ == "__main__":  # python tests/test_import_graph.py: print the wing-to-wing imports
    counts: dict[tuple[str, str], int] = {}
    for source, targets in _graph().items():
        for target in targets:
            if _wing(source) and _wing(target) and _wing(source) != _wing(target):
                counts[(_wing(source), _wing(target))] = counts.get((_wing(source), _wing(target)), 0) + 1
    for (source, target), count in sorted(counts.items()):
        sys.stdout.write(f"{source:>9} -> {target:<9} {count}\n")
