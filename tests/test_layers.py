"""The layer contract: is_core never imports Prefect, Great Expectations, tasks or flows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FORBIDDEN = ("prefect", "great_expectations", "tasks", "flows", "deployments")
CORE = sorted((Path(__file__).parents[1] / "is_core").rglob("*.py"))


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_is_core_module_imports_no_orchestration(path: Path):
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & set(FORBIDDEN), f"{path.name} imports {imported & set(FORBIDDEN)}"


def test_the_scan_sees_the_library():
    assert len(CORE) >= 10
