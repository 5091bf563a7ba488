"""The house's import rules, read from the source (AST), function-level and TYPE_CHECKING imports included:

* imports go one way: handlers -> entry/http -> services -> data -> db/models; ports and errors are leaves;
* no module imports itself back through others (a cycle), however deep or however hidden;
* the layer never imports functions/ or the local runner;
* only the settings modules read the environment.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "shared" / "genjobs"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LAYER.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module the file imports, wherever the import statement is (function bodies too)."""
    found: set[str] = set()
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def layer_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(LAYER.rglob("*.py"))}


MODULES = layer_modules()


def internal_edges() -> dict[str, set[str]]:
    return {name: {i for i in imports_of(path) if i in MODULES and i != name} for name, path in MODULES.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_hidden_cycle() -> None:
    # a <- b via a function-level import, as services/videos <-> services/worker once did
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_layer_has_no_import_cycle() -> None:
    assert len(MODULES) > 30, "no modules found: is the path right?"
    assert find_cycle(internal_edges()) is None


def test_layer_never_imports_functions_or_the_local_runner() -> None:
    offenders = {name: sorted(i for i in imports_of(path) if i.split(".")[0] in ("functions", "local_runner", "tests"))
                 for name, path in MODULES.items()}
    assert {k: v for k, v in offenders.items() if v} == {}


# package -> what it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "genjobs.services": ("genjobs.http", "genjobs.entry", "genjobs.dependencies", "genjobs.settings",
                         "genjobs.adapters", "aws_lambda_powertools", "boto3", "os"),
    "genjobs.data": ("genjobs.services", "genjobs.http", "genjobs.entry", "genjobs.dependencies", "genjobs.settings",
                     "genjobs.adapters"),
    "genjobs.models": ("genjobs.services", "genjobs.data", "genjobs.http", "genjobs.db", "genjobs.adapters"),
    "genjobs.db": ("genjobs.services", "genjobs.data", "genjobs.http", "genjobs.models"),
    "genjobs.media": ("genjobs.services", "genjobs.data", "genjobs.db", "genjobs.http", "genjobs.adapters"),
    "genjobs.adapters": ("genjobs.services", "genjobs.data", "genjobs.http", "genjobs.models"),
    "genjobs.ports": ("genjobs.services", "genjobs.data", "genjobs.db", "genjobs.http", "genjobs.adapters"),
    "genjobs.errors": ("genjobs.",),
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package: str) -> None:
    modules = {n: p for n, p in MODULES.items() if n == package or n.startswith(package + ".")}
    assert modules, f"{package} has no modules"
    offenders = {
        name: sorted(i for i in imports_of(path)
                     if any(i == banned or i.startswith(banned if banned.endswith(".") else banned + ".")
                            for banned in FORBIDDEN[package]))
        for name, path in modules.items()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


# -- the environment ------------------------------------------------------------------------------------

SETTINGS_MODULES = {LAYER / "settings.py", ROOT / "local_runner" / "settings.py"}
# Writes that configure the emulated Lambda environment of the local runner's functions.
ENVIRONMENT_WRITES = {"setdefault", "update"}


def environment_reads(source: str) -> Iterator[int]:
    """Lines that read the process environment: os.environ (except its write methods), os.getenv, or
    `environ`/`getenv` imported from os."""
    tree = ast.parse(source)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os" and \
                any(a.name in ("environ", "getenv", "environb") for a in node.names):
            yield node.lineno
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "environb"):
            parent = parents.get(node)
            written = isinstance(parent, ast.Attribute) and parent.attr in ENVIRONMENT_WRITES \
                and isinstance(parents.get(parent), ast.Call)
            assigned = isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store)
            if not (written or assigned):
                yield node.lineno


def test_the_environment_scanner_sees_reads_and_allows_writes() -> None:
    source = ("import os\nfrom os import getenv\na = os.environ.get('A')\nb = os.getenv('B')\nenv = os.environ\n"
              "os.environ.setdefault('C', '1')\nos.environ['D'] = '2'\nos.environ.update({'E': '3'})\n")
    assert sorted(environment_reads(source)) == [2, 3, 4, 5]


def test_only_the_settings_modules_read_the_environment() -> None:
    roots = [LAYER, ROOT / "functions", ROOT / "local_runner"]
    offenders = {
        str(path.relative_to(ROOT)): lines
        for root in roots for path in sorted(root.rglob("*.py"))
        if path not in SETTINGS_MODULES and (lines := sorted(environment_reads(path.read_text())))
    }
    assert offenders == {}
