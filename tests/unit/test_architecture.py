"""The package's shape (docs: "imports running one way, no circles, the analysing half free of torch"):
lensllm's import graph, read from the source, has no circle, and importing the analysing subpackages
(curves, selection, report) does not import torch or transformers.

Each check is also run on a scratch package made to break it, so that a check that cannot fail fails.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

SOURCE = REPO / "src"
# The analysing half: numpy, scipy, pandas, matplotlib; no torch, no transformers.
TORCH_FREE = ["lensllm.curves", "lensllm.selection", "lensllm.report"]
HEAVY = ["torch", "transformers"]


# --- the import graph -------------------------------------------------------------------------


def modules_under(root: Path, package: str) -> dict[str, Path]:
    """Every module of `package` (a directory under `root`): dotted name -> file; a package is
    named by its directory (its __init__.py)."""
    modules = {}
    for path in sorted((root / package.replace(".", "/")).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every import statement of a module, those inside functions and classes included, those under
    `if TYPE_CHECKING:` left out (they never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of `package` it imports: `import a.b.c` -> a.b.c (or the longest
    prefix that is a module), `from a.b import c` -> a.b.c if that is a module, else a.b; relative
    imports resolved against the importing module's package."""
    modules = modules_under(root, package)

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]  # the package of `name`
        targets = []
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
                continue
            if node.level:
                base = here.split(".")
                base = ".".join(base[: len(base) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                full = f"{source}.{alias.name}"
                targets.append(full if full in modules else source)
        for target in targets:
            if target == package or target.startswith(package + "."):
                found = known(target)
                if found and found != name:
                    graph[name].add(found)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected part of `graph` that has one, as the list of its
    modules with the first repeated at the end (a -> b -> a)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    parts: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm (the graph is small: recursion is fine)
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1 or node in graph.get(node, ()):
                parts.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)

    cycles = []
    for part in parts:  # the shortest way back to the part's first module, inside the part
        start, members = part[0], set(part)
        paths = {start: [start]}
        queue = [start]
        while queue:
            node = queue.pop(0)
            for nxt in sorted(graph[node] & members):
                if nxt == start:
                    cycles.append(paths[node] + [start])
                    queue = []
                    break
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    queue.append(nxt)
    return cycles


def assert_no_circle(graph: dict[str, set[str]]) -> None:
    cycles = import_cycles(graph)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_lensllm_has_no_import_circle():
    graph = import_graph(SOURCE, "lensllm")
    assert len(graph) > 30 and sum(map(len, graph.values())) > 30  # the graph was read
    assert_no_circle(graph)


def subpackage_graph(graph: dict[str, set[str]], package: str) -> dict[str, set[str]]:
    """The module graph collapsed onto `package`'s subpackages and top-level modules (pkg.a.b -> pkg.a)."""
    def top(name: str) -> str:
        return ".".join(name.split(".")[:2])

    collapsed: dict[str, set[str]] = {}
    for name, targets in graph.items():
        collapsed.setdefault(top(name), set()).update(top(t) for t in targets if top(t) != top(name))
    collapsed.pop(package, None)  # the package's own __init__ is no layer
    return {name: targets - {package} for name, targets in collapsed.items()}


def test_subpackages_import_one_way():
    """curves <- selection <- report, and data <- training <- probes: no two subpackages import each other."""
    graph = subpackage_graph(import_graph(SOURCE, "lensllm"), "lensllm")
    assert {"lensllm.curves", "lensllm.selection", "lensllm.training", "lensllm.probes"} <= set(graph)
    assert_no_circle(graph)
    for analysing in TORCH_FREE:
        assert not graph[analysing] & {"lensllm.training", "lensllm.probes", "lensllm.data"}, analysing


def test_the_subpackage_check_finds_a_circle_between_modules_that_have_none(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "", "pkg/a/__init__.py": "", "pkg/b/__init__.py": "",
        "pkg/a/low.py": "", "pkg/a/high.py": "from pkg.b import mid\n", "pkg/b/mid.py": "from pkg.a import low\n",
    })
    graph = import_graph(root, "pkg")
    assert import_cycles(graph) == []
    assert import_cycles(subpackage_graph(graph, "pkg")) == [["pkg.a", "pkg.b", "pkg.a"]]


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_circle_check_finds_circles_of_every_kind_of_import(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a/__init__.py": "",
        "pkg/a/one.py": "from pkg.b import two\n",                      # from package import module
        "pkg/b/__init__.py": "",
        "pkg/b/two.py": "def f():\n    from ..a import three\n",        # relative, inside a function
        "pkg/a/three.py": "import pkg.a.one\n",                          # import a.b.c
        "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\nfrom .a.one import x\n",
        "pkg/d.py": "from pkg.c import y\n",  # c -> d only for the type checker: no circle
    })
    graph = import_graph(root, "pkg")
    assert graph["pkg.a.one"] == {"pkg.b.two"} and graph["pkg.b.two"] == {"pkg.a.three"}
    assert graph["pkg.c"] == {"pkg.a.one"} and graph["pkg.d"] == {"pkg.c"}
    assert import_cycles(graph) == [["pkg.a.one", "pkg.b.two", "pkg.a.three", "pkg.a.one"]]
    with pytest.raises(AssertionError, match=re.escape("pkg.a.one -> pkg.b.two -> pkg.a.three -> pkg.a.one")):
        assert_no_circle(graph)
    # a package's __init__ importing its own module is an edge like any other
    _write(root, {"pkg/e/__init__.py": "from .f import g\n", "pkg/e/f.py": "from pkg.e import h\n"})
    assert ["pkg.e", "pkg.e.f", "pkg.e"] in import_cycles(import_graph(root, "pkg"))


# --- torch stays out of the analysing half ------------------------------------------------------

PROBE = """
import importlib, json, sys
heavy, modules, first = sys.argv[1].split(","), sys.argv[2:], {}
for module in modules:
    importlib.import_module(module)
    for name in heavy:
        if name in sys.modules and name not in first:
            first[name] = module
print(json.dumps(first))
"""


def heavy_imports(root: Path, package: str, heavy: list[str]) -> dict[str, str]:
    """Import every module of `package` (from `root`) in a fresh interpreter, one after the other:
    each of `heavy` found in sys.modules -> the module after whose import it first was there."""
    modules = list(modules_under(root, package))
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-c", PROBE, ",".join(heavy), *modules], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def assert_imports_none_of(root: Path, package: str, heavy: list[str]) -> None:
    found = heavy_imports(root, package, heavy)
    assert not found, f"importing {package} imports " + ", ".join(f"{name} (first after {module})" for name, module in found.items())


@pytest.mark.parametrize("package", TORCH_FREE)
def test_the_analysing_half_does_not_import_torch(package):
    assert_imports_none_of(SOURCE, package, HEAVY)


def test_the_torch_check_names_the_module_that_imports_it(tmp_path):
    root = _write(tmp_path, {
        "fakeheavy.py": "",
        "pkg/__init__.py": "",
        "pkg/light.py": "import json\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/heavy.py": "from pkg import light\nimport fakeheavy\n",
    })
    assert heavy_imports(root, "pkg", ["fakeheavy", "torch"]) == {"fakeheavy": "pkg.sub.heavy"}
    with pytest.raises(AssertionError, match=re.escape("importing pkg imports fakeheavy (first after pkg.sub.heavy)")):
        assert_imports_none_of(root, "pkg", ["fakeheavy"])
    assert_imports_none_of(root, "pkg.sub", ["torch"])
