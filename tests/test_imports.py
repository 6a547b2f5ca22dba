"""The layers import downwards only: no import cycle among the modules of bench/, models/ and data/.

Every `import` counts, the ones inside functions too: a cycle hidden in a function body (as
`engine/checkpoint.py` <-> `engine/convert/command.py` once were) still ties two modules into one. The
graph is read from the source (ast), so no module is executed; one test also imports every module.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "models", "data")


def module_names() -> dict[str, Path]:
    names = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names[".".join(parts)] = path
    return names


def imported(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Project modules that the module `name` (file `path`) imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule where one exists, else names of the package
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def project_graph() -> dict[str, set[str]]:
    known = module_names()
    # a package's own __init__ is imported with each of its submodules: that edge is no cycle of code
    return {
        name: {t for t in imported(path, name, known) if not name.startswith(f"{t}.")}
        for name, path in known.items()
    }


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_bench_models_data():
    graph = project_graph()
    assert "bench.engine.checkpoint" in graph and graph["bench.engine.opener"]  # the walk found the code
    assert cycles(graph) == []


def test_evaluation_does_not_import_the_report_layer():
    graph = project_graph()
    evaluation = [name for name in graph if name.startswith("bench.evaluation")]
    assert evaluation
    for name in evaluation:
        assert not {t for t in graph[name] if t.startswith("bench.report")}, name


@pytest.mark.parametrize("name", sorted(n for n in module_names() if not n.endswith("__main__")))
def test_every_module_imports(name):
    pytest.importorskip("tensorflow")
    importlib.import_module(name)
