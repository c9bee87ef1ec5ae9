"""The architecture as tests: the layer contract, the rules between the parts of ``is_core``,
the shape of the tree, and function length.

- ``is_core`` never imports Prefect, Great Expectations, ``tasks``, ``flows`` or
  ``deployments``;
- between the parts of ``is_core`` (its subpackages), only the imports of :data:`MAY_IMPORT`
  exist: ``data`` imports no other part; ``weights`` no ``ctr``, ``report`` or ``release``;
  ``report`` no ``release``; nothing but ``benchmark`` imports ``benchmark``;
- ``is_core``'s top level holds at most four modules (what every part shares);
- each part's ``__init__`` names its public objects in a sorted ``__all__``;
- no function in the project's code is longer than 80 lines.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT
CORE_DIR = ROOT / "is_core"
FORBIDDEN = ("prefect", "great_expectations", "tasks", "flows", "deployments")
CORE = sorted(CORE_DIR.rglob("*.py"))
PARTS = sorted(p.name for p in CORE_DIR.iterdir() if (p / "__init__.py").is_file())
SHARED = {"config", "errors", "_validation"}  # top-level modules every part may import

#: part -> the other parts it may import (the shared top-level modules aside)
MAY_IMPORT: dict[str, set[str]] = {
    "data": set(),
    "simulate": {"data"},
    "weights": {"data"},
    "ctr": {"data", "weights"},
    "release": {"data", "weights", "ctr"},
    "report": {"data", "weights", "ctr"},
    "benchmark": {"data", "weights", "ctr", "report", "simulate"},
    # the Dask engine runs the other parts' stages on partitions; nothing imports it
    "engine": {"data", "weights", "ctr", "release"},
}
MAX_FUNCTION_LINES = 80


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by ``path``."""
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _part_of(path: Path) -> str | None:
    rel = path.relative_to(CORE_DIR).parts
    return rel[0] if len(rel) > 1 else None


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(CORE_DIR)))
def test_is_core_module_imports_no_orchestration(path: Path):
    roots = {name.split(".")[0] for name in _imports(path)}
    assert not roots & set(FORBIDDEN), f"{path.name} imports {roots & set(FORBIDDEN)}"


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(CORE_DIR)))
def test_parts_import_only_what_they_may(path: Path):
    part = _part_of(path)
    used = {name.split(".")[1] for name in _imports(path)
            if name.startswith("is_core.") and name.count(".") >= 1}
    used = {u for u in used if u in PARTS}
    if part is None:  # a shared top-level module imports no part
        assert not used, f"{path.name} (shared by every part) imports the part(s) {used}"
        return
    allowed = MAY_IMPORT[part] | {part}
    assert used <= allowed, (f"is_core/{part}/{path.name} imports {sorted(used - allowed)}; "
                             f"is_core.{part} may import only {sorted(MAY_IMPORT[part])}")


def test_every_part_has_its_rule():
    assert set(PARTS) == set(MAY_IMPORT)


def test_the_top_level_holds_only_what_every_part_shares():
    top = sorted(p.stem for p in CORE_DIR.glob("*.py") if p.stem != "__init__")
    assert set(top) <= SHARED and len(top) <= 4, top


@pytest.mark.parametrize("part", PARTS)
def test_each_part_names_its_public_objects(part: str):
    module = importlib.import_module(f"is_core.{part}")
    assert module.__doc__, f"is_core.{part} has no docstring"
    names = list(module.__all__)
    assert names == sorted(names), f"is_core.{part}.__all__ is not sorted"
    assert all(hasattr(module, n) for n in names)
    assert (CORE_DIR / part / "stage.py").is_file() or part in {"report", "simulate",
                                                                   "benchmark"}


def _functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


SOURCES = sorted(p for d in ("is_core", "tasks", "flows", "deployments")
                 for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_is_longer_than_80_lines(path: Path):
    long = [f"{name} (line {line}: {n} lines)" for name, line, n in _functions(path)
            if n > MAX_FUNCTION_LINES]
    assert not long, f"{path.relative_to(ROOT)}: split {long}"


def test_the_scan_sees_the_library():
    assert len(CORE) >= 30 and len(PARTS) == 8
