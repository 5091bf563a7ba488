"""Imports go one way: handlers -> services -> data access -> models; the layer never imports functions/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LAYER = Path(__file__).resolve().parents[2] / "layers" / "shared" / "genjobs"


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules_under(package: str) -> list[Path]:
    return sorted((LAYER / package).rglob("*.py")) if (LAYER / package).is_dir() else []


FORBIDDEN: dict[str, tuple[str, ...]] = {
    "services": ("genjobs.http", "functions", "aws_lambda_powertools.event_handler", "os"),
    "data": ("genjobs.services", "genjobs.http", "functions"),
    "models": ("genjobs.services", "genjobs.data", "genjobs.http", "genjobs.db", "functions"),
    "db": ("genjobs.services", "genjobs.data", "genjobs.http", "functions"),
}


def test_layer_never_imports_functions() -> None:
    offenders = [str(p.relative_to(LAYER)) for p in LAYER.rglob("*.py")
                 if any(i == "functions" or i.startswith("functions.") for i in imports_of(p))]
    assert offenders == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package: str) -> None:
    modules = modules_under(package)
    assert modules, f"genjobs/{package} has no modules"
    offenders = {
        str(path.relative_to(LAYER)): sorted(
            i for i in imports_of(path)
            if any(i == banned or i.startswith(banned + ".") for banned in FORBIDDEN[package])
        )
        for path in modules
    }
    assert {k: v for k, v in offenders.items() if v} == {}
