"""The package's own import graph: no module imports (at any level, function bodies
included) a module that imports it back, and the compiled modules import no cgdn Python
module."""
import ast
import pathlib
import re

import cgdn

_PACKAGE = pathlib.Path(cgdn.__file__).parent
# One pair is left: layers export themselves through cgdn._interop, which builds layers.
_KNOWN = {frozenset({"cgdn._interop", "cgdn._layer"})}


def _imports(path):
    """The cgdn modules ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "cgdn")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "cgdn":
                for alias in node.names:
                    is_module = (_PACKAGE / f"{alias.name}.py").exists() or any(
                        _PACKAGE.glob(f"{alias.name}.*.so")) or any(
                        _PACKAGE.glob(f"{alias.name}.*.pyd"))
                    found.add(f"cgdn.{alias.name}" if is_module else "cgdn")
            elif node.module.split(".")[0] == "cgdn":
                found.add(node.module)
    return found


def _graph():
    graph = {}
    for path in _PACKAGE.glob("*.py"):
        name = "cgdn" if path.stem == "__init__" else f"cgdn.{path.stem}"
        graph[name] = _imports(path) - {name}
    return graph


def _cycles(graph):
    """Pairs (a, b) with a path a -> b and b -> a."""
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen
    reachable = {name: reach(name) for name in graph}
    return {frozenset({a, b}) for a in graph for b in reachable[a]
            if a != b and a in reachable.get(b, ())}


def test_no_import_cycles():
    graph = _graph()
    assert "cgdn._dask" in graph and "cgdn._gdn" in graph["cgdn"]   # the scan sees imports
    cycles = _cycles(graph)
    assert cycles <= _KNOWN, sorted(sorted(pair) for pair in cycles - _KNOWN)


def test_compiled_modules_import_no_cgdn_python_module():
    # the careful path and everything else of a call run in C: no Python module is
    # imported from the compiled code
    for path in list(_PACKAGE.glob("*.pyx")) + list(_PACKAGE.glob("*.pxi")):
        text = path.read_text()
        assert not re.search(r"^\s*(from\s+cgdn\S*\s+import|import\s+cgdn)", text, re.M), path
