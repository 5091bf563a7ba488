"""Find the environment variables the deployed code reads, by reading its source (AST).

Recognised reads (the receiver is `os.environ` or a name such as `env` / `environ` / `environment`):

* `env.get("X")`, `env.get("X", default)`, `os.getenv("X"[, default])`
* `env["X"]`, `os.environ["X"]`
* helper calls that take the mapping and the name first: `_int(env, "X", 10)`, `_float(env, "X", 1.5)`,
  `_bool(os.environ, "X", default=False)`, ...

A read *has a default* when a missing variable still yields a usable (non-None) value: a default argument
that is not None, or an `or <fallback>` after it whose fallback is not None. `env.get("X") or None` and a bare
`env.get("X")` have none: such a variable must be set by the template (or be listed as optional).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_MAPPING_NAMES = {"env", "environ", "environment", "os_environ"}


@dataclass(frozen=True)
class EnvRead:
    name: str
    has_default: bool
    path: Path
    line: int

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def _is_env_mapping(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id in _MAPPING_NAMES
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return False


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _str_arg(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENV_NAME.match(node.value):
        return node.value
    return None


def _or_fallback(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True when `node` is an operand of `a or b or ...` followed by an operand that is not None."""
    parent = parents.get(node)
    if isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.Or):
        later = parent.values[parent.values.index(node) + 1 :]  # type: ignore[arg-type]
        return any(not _is_none(value) for value in later)
    return False


def _call_read(node: ast.Call) -> tuple[str, bool] | None:
    func = node.func
    # env.get("X"[, default]) / os.environ.get(...)
    if isinstance(func, ast.Attribute) and func.attr == "get" and _is_env_mapping(func.value):
        name = _str_arg(node.args[0]) if node.args else None
        if name:
            default = node.args[1] if len(node.args) > 1 else next(
                (kw.value for kw in node.keywords if kw.arg == "default"), None
            )
            return name, default is not None and not _is_none(default)
        return None
    # os.getenv("X"[, default])
    if (
        isinstance(func, ast.Attribute)
        and func.attr == "getenv"
        and isinstance(func.value, ast.Name)
        and func.value.id == "os"
    ):
        name = _str_arg(node.args[0]) if node.args else None
        if name:
            default = node.args[1] if len(node.args) > 1 else None
            return name, default is not None and not _is_none(default)
        return None
    # helper(env, "X", default, ...)
    if len(node.args) >= 2 and _is_env_mapping(node.args[0]):
        name = _str_arg(node.args[1])
        if name:
            default = node.args[2] if len(node.args) > 2 else next(
                (kw.value for kw in node.keywords if kw.arg == "default"), None
            )
            return name, default is not None and not _is_none(default)
    return None


def reads_in_source(source: str, path: Path) -> Iterator[EnvRead]:
    tree = ast.parse(source, filename=str(path))
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found = _call_read(node)
            if found:
                yield EnvRead(found[0], found[1] or _or_fallback(node, parents), path, node.lineno)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_env_mapping(node.value):
            key = _str_arg(node.slice)
            if key:
                yield EnvRead(key, _or_fallback(node, parents), path, node.lineno)


def env_reads(roots: Iterable[Path]) -> list[EnvRead]:
    found: list[EnvRead] = []
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            if "__pycache__" in path.parts:
                continue
            found.extend(reads_in_source(path.read_text(encoding="utf-8"), path))
    return found
