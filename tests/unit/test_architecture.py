"""The arrows run one way: the core imports no adapter, and no module imports itself
back through others.

1. Import purity. In a fresh interpreter where paho, gpiozero, httpx, pydantic
   and sqlite3 cannot be imported (a finder placed first on ``sys.meta_path``
   refuses them and their submodules), every module of ``gateway.core``
   imports. A control import of ``gateway.inputs.mqtt`` in the same
   interpreter must fail on the blocker, or the check proves nothing.
2. No import cycles. Every ``import`` in ``gateway/``, ``devices/`` and
   ``firmware_sim/`` is read with :mod:`ast`, wherever it stands: a lazy import
   inside a function and a type-only import under ``TYPE_CHECKING`` tie two
   modules together just as a top-level one does. ``from pkg import name``
   points at the submodule when ``name`` is one, and a package's ``__init__``
   re-exports are edges from the package. Each strongly connected component of
   more than one module (Tarjan) is a cycle; the failure lists one loop of each,
   with the file and line of every import on it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "devices", "firmware_sim")
ADAPTER_LIBRARIES = ("paho", "gpiozero", "httpx", "pydantic", "sqlite3")

# Runs in the subprocess: block the libraries, import, report as JSON.
_PURITY_PROBE = """
import importlib, json, sys, traceback

BLOCKED = {blocked!r}
MARKER = "blocked for the import-purity test"


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{MARKER}}: {{name}}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
for name in list(sys.modules):
    if name.split(".")[0] in BLOCKED:
        del sys.modules[name]


def attempt(module):
    try:
        importlib.import_module(module)
    except Exception as exc:
        # The import lines of our own files that led there, outermost first.
        ours = [
            f"{{frame.filename.removeprefix({root!r} + '/')}}:{{frame.lineno}}"
            for frame in traceback.extract_tb(exc.__traceback__)
            if frame.filename.startswith({root!r} + "/")
        ]
        return f"{{type(exc).__name__}}: {{exc}} (via {{' -> '.join(ours) or 'nothing of ours'}})"
    return None


report = {{"core": {{m: attempt(m) for m in {core!r}}}, "control": attempt({control!r})}}
print(json.dumps(report))
"""


def _core_modules() -> list[str]:
    core = ROOT / "gateway" / "core"
    names = sorted(path.stem for path in core.glob("*.py") if path.stem != "__init__")
    return ["gateway.core", *(f"gateway.core.{name}" for name in names)]


def test_the_core_imports_without_any_adapter_library() -> None:
    core = _core_modules()
    assert len(core) > 1, "gateway/core has no modules to check"
    probe = _PURITY_PROBE.format(
        blocked=ADAPTER_LIBRARIES, core=core, control="gateway.inputs.mqtt", root=str(ROOT)
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # The control: an adapter module must be stopped by the blocker itself.
    control = report["control"]
    assert control is not None and "blocked for the import-purity test" in control, control
    failures = {module: error for module, error in report["core"].items() if error}
    assert not failures, "the core needs an adapter library:\n" + "\n".join(
        f"  {module}: {error}" for module, error in failures.items()
    )


# --------------------------------------------------------------------------- the graph


@dataclass(frozen=True)
class Edge:
    target: str
    where: str  # "gateway/config/load.py:34"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _our_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            files[_module_name(path)] = path
    return files


def _resolve(name: str, modules: Mapping[str, object]) -> str | None:
    """The module ``name`` lands in: itself, or the nearest package holding it."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(
    module: str, source: str, filename: str, modules: Mapping[str, object]
) -> Iterator[Edge]:
    """Edges from ``module`` (whose text is ``source``) to the modules it imports."""
    tree = ast.parse(source, filename=filename)
    is_package = filename.endswith("__init__.py")
    for node in ast.walk(tree):  # every import, also inside functions and TYPE_CHECKING
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                # Relative to the package: a module's parent, or an __init__'s own package.
                anchor = module.split(".")
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop] if drop else anchor
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from pkg import name`` imports the submodule pkg.name when there is one.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        for target in targets:
            resolved = _resolve(target, modules)  # None: the standard library, a dependency
            if resolved is not None and resolved != module:
                yield Edge(resolved, where)


def import_graph() -> dict[str, list[Edge]]:
    modules = _our_files()
    return {
        name: list(
            _imports(name, path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), modules)
        )
        for name, path in modules.items()
    }


def strongly_connected(graph: Mapping[str, list[Edge]]) -> list[list[str]]:
    """Tarjan's components with more than one module, each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in graph.get(node, []):
            if edge.target not in index:
                visit(edge.target)
                low[node] = min(low[node], low[edge.target])
            elif edge.target in on_stack:
                low[node] = min(low[node], index[edge.target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def one_loop(graph: Mapping[str, list[Edge]], component: list[str]) -> list[tuple[str, Edge]]:
    """The shortest loop from the component's first module back to it, hop by hop."""
    members = set(component)
    start = component[0]
    came_from: dict[str, tuple[str, Edge]] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for edge in graph[node]:
            if edge.target not in members or edge.target in came_from:
                continue
            came_from[edge.target] = (node, edge)
            if edge.target == start:
                hops: list[tuple[str, Edge]] = []
                current = start
                while True:
                    previous, via = came_from[current]
                    hops.append((previous, via))
                    current = previous
                    if current == start:
                        return hops[::-1]
            queue.append(edge.target)
    raise AssertionError(f"no loop through {start} in {component}")


_PLANTED_SOURCE = """
from typing import TYPE_CHECKING

from . import sibling
from .sibling import helper
import pkg.deep.leaf
import json

if TYPE_CHECKING:
    from pkg.types import Alias


def later():
    from pkg import deep
"""


def test_the_walk_and_the_cycle_finder_see_what_was_planted() -> None:
    modules = dict.fromkeys(["pkg", "pkg.mod", "pkg.sibling", "pkg.deep", "pkg.types"])
    edges = list(_imports("pkg.mod", _PLANTED_SOURCE, "pkg/mod.py", modules))
    assert [(edge.target, edge.where) for edge in edges] == [
        ("pkg.sibling", "pkg/mod.py:4"),  # relative, a submodule
        ("pkg.sibling", "pkg/mod.py:5"),  # relative, a name in a module
        ("pkg.deep", "pkg/mod.py:6"),  # a module we do not have: its nearest package
        ("pkg.types", "pkg/mod.py:10"),  # type-only
        ("pkg.deep", "pkg/mod.py:14"),  # lazy, inside a function
    ]
    init = list(_imports("pkg", "from . import types\n", "pkg/__init__.py", modules))
    assert init == [Edge("pkg.types", "pkg/__init__.py:1")]  # a re-export
    planted = {
        "a": [Edge("b", "a.py:1")],
        "b": [Edge("c", "b.py:2")],
        "c": [Edge("a", "c.py:3"), Edge("d", "c.py:4")],
        "d": [],
    }
    assert strongly_connected(planted) == [["a", "b", "c"]]
    assert [edge.where for _, edge in one_loop(planted, ["a", "b", "c"])] == [
        "a.py:1",
        "b.py:2",
        "c.py:3",
    ]


def test_no_module_imports_itself_back_through_others() -> None:
    graph = import_graph()
    # The walk sees our own imports: the registry imports each family module.
    assert {edge.target for edge in graph["devices.registry"]} >= {
        "devices.tasmota",
        "devices.base",
    }
    cycles = strongly_connected(graph)
    lines = []
    for component in cycles:
        loop = " -> ".join(
            f"{source} ({edge.where})" for source, edge in one_loop(graph, component)
        )
        lines.append(f"  {', '.join(component)}\n    {loop} -> {component[0]}")
    assert not cycles, "import cycles:\n" + "\n".join(lines)
