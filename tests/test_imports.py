"""The layers import downwards only: no import cycle among the modules of bench/, models/ and data/, and
every import allowed by the `May import:` line of its package's `__init__.py` docstring.

Every `import` counts, the ones inside functions too: a cycle hidden in a function body (as
`checkpoint.py` <-> `convert/command.py` once were) still ties two modules into one. The graph is read
from the source (ast), so no module is executed; one test also imports every module. The README's
`## Layout` table is checked against the tree and against those lines, so neither can drift.
"""

from __future__ import annotations

import ast
import importlib
import re
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
    assert (
        "bench.sources.keras_checkpoint" in graph and graph["bench.sources.opener"]
    )  # the walk found the code
    assert cycles(graph) == []


def imports_of(prefix: str, graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The project modules that the modules under `prefix` import, by module (none of them empty)."""
    found = {
        name: targets for name, targets in graph.items() if name == prefix or name.startswith(prefix + ".")
    }
    assert found, f"no module under {prefix}"
    return found


def reaches(targets: set[str], *rooms: str) -> set[str]:
    return {t for t in targets if any(t == room or t.startswith(room + ".") for room in rooms)}


def test_evaluation_imports_no_source_loop_training_or_report():
    for name, targets in imports_of("bench.evaluation", project_graph()).items():
        assert not reaches(targets, "bench.sources", "bench.inference", "bench.training", "bench.report"), (
            name
        )


def test_evaluation_never_imports_tensorflow():
    for name, path in module_names().items():
        if name.startswith("bench.evaluation"):
            assert not {"tensorflow", "keras"} & third_party(path), name


def test_sources_never_import_training_or_the_loop():
    for name, targets in imports_of("bench.sources", project_graph()).items():
        assert not reaches(targets, "bench.training", "bench.inference"), name


def test_the_loop_never_imports_training():
    """Validation during training calls the loop, never the other way round."""
    for name, targets in imports_of("bench.inference", project_graph()).items():
        assert not reaches(targets, "bench.training"), name


def third_party(path: Path) -> set[str]:
    """Top-level names of everything `path` imports, anywhere in its body."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


MAY_IMPORT = re.compile(r"^May import: (.+?)\.$", re.M | re.S)


def package_rules() -> dict[str, str]:
    """Package -> the text of its `May import:` line (packages of bench/, models/, data/ that have one)."""
    rules = {}
    for name, path in module_names().items():
        if path.name == "__init__.py":
            match = MAY_IMPORT.search(ast.get_docstring(ast.parse(path.read_text())) or "")
            if match:
                rules[name] = " ".join(match.group(1).split())
    return rules


def rule_of(module: str, rules: dict[str, str]) -> tuple[str, str]:
    """The nearest package above `module` (or itself) that says what it may import, and what it says."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        package = ".".join(parts[:n])
        if package in rules:
            return package, rules[package]
    raise AssertionError(f"{module}: no package above it says what it may import")


def allowed(rule: str) -> list[str]:
    return [] if rule.startswith("nothing") else [room.strip() for room in rule.split(",")]


def test_every_package_says_what_it_holds_and_may_import():
    rules = package_rules()
    for name, path in module_names().items():
        if path.name == "__init__.py":
            assert ast.get_docstring(ast.parse(path.read_text())), f"{path} has no docstring"
        rule_of(name, rules)
    assert {"bench", "bench.sources", "bench.inference", "bench.training", "bench.evaluation"} <= set(rules)


def test_every_import_is_one_its_package_allows():
    rules = package_rules()
    wrong = []
    for name, targets in project_graph().items():
        package, rule = rule_of(name, rules)
        for target in targets:
            if target == package or target.startswith(package + "."):
                continue
            if not reaches({target}, *allowed(rule)):
                wrong.append(f"{name} imports {target} ({package} may import: {rule})")
    assert wrong == []


def test_the_rule_checker_refuses_an_import_out_of_bounds():
    rules = {"a": "b, c.d", "a.x": "nothing of the project"}
    assert rule_of("a.y.z", rules) == ("a", "b, c.d")
    assert reaches({"c.d.e"}, *allowed(rules["a"])) and not reaches({"c.e"}, *allowed(rules["a"]))
    assert allowed(rule_of("a.x.y", rules)[1]) == []


def readme_layout() -> dict[str, str]:
    """Folder -> its `may import` cell, from the README's `## Layout` table."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Layout") :].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([\w/]+)/` \| .+ \| ([^|]+) \|$", section, re.M)
    return {folder: cell.strip() for folder, cell in rows}


def test_readme_layout_names_every_package_and_its_rule():
    rules = package_rules()
    packages = {name.replace(".", "/") for name, path in module_names().items() if path.name == "__init__.py"}
    layout = readme_layout()
    assert set(layout) == packages
    for folder, cell in layout.items():
        assert cell == rule_of(folder.replace("/", "."), rules)[1], folder


@pytest.mark.parametrize("name", sorted(n for n in module_names() if not n.endswith("__main__")))
def test_every_module_imports(name):
    pytest.importorskip("tensorflow")
    importlib.import_module(name)


def test_the_project_folders_are_the_checkouts():
    """Where paths.py sits decides where results and checkpoints go: a move must not shift them."""
    from bench.common import paths

    assert paths.PROJECT_ROOT == ROOT
    assert (paths.PROJECT_ROOT / "Makefile").is_file() and paths.README == ROOT / "README.md"
