"""Issue 20, item 4c: every fix names things that exist.

A misspelled config key ended with "see configs/demo.yaml" when no such file existed. This scans
the source of ``is_core``, ``tasks``, ``flows`` and ``deployments`` for every fix an error or a
check can show (``fix=`` arguments, ``"fix"`` entries, ``FIX_*`` constants, the fix argument of
``contract_record``, what a ``*_fix`` function returns, the ``(what, fix)`` pairs of the config
errors and the text after a literal ``Fix:``) and checks that each file it names (``configs/...``,
``*.yaml``, ``*.py``, ...) is in the repository, each `` `make target` `` is a Makefile target and
each `` `isbench <command> --option` `` a command and option of the CLI's parser.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.cli import build_parser
from is_core.config import IsbenchConfig
from is_core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("is_core", "tasks", "flows", "deployments")
UNKNOWN = "{}"
"""Stands for a part of a fix only known at run time (an f-string field, a variable)."""

_FIX_NAME = re.compile(r"^_?([A-Z0-9]+_)*FIX(ES)?(_[A-Z0-9]+)*$")
_REPO_DIRS = "configs|benchmarks|expectations|deployments|flows|tasks|is_core|tests"
_PATH = re.compile(rf"(?<![\w./{{}}-])((?:{_REPO_DIRS})/[\w./-]*[\w/]|[\w-]+\.(?:ya?ml|toml|py)"
                   r"|Makefile)(?![\w{}])")
_COMMAND = re.compile(r"`(make|isbench) ([^`]*)`")


# ---------------------------------------------------------------------------- collecting fixes
def _texts(node: ast.AST | None) -> list[str]:
    """The texts an expression can have, with :data:`UNKNOWN` for parts known only at run time
    (both branches of a conditional, every operand of ``or``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value if isinstance(v, ast.Constant) else UNKNOWN
                        for v in node.values)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [a + b for a in _texts(node.left) for b in _texts(node.right)]
    if isinstance(node, ast.IfExp):
        return _texts(node.body) + _texts(node.orelse)
    if isinstance(node, ast.BoolOp):
        return [text for value in node.values for text in _texts(value)]
    if isinstance(node, ast.Dict):  # a table of fixes (``_FIXES = {"ess": "..."}``)
        return [text for value in node.values for text in _texts(value)]
    return [UNKNOWN]


def _fix_nodes(tree: ast.Module) -> Iterator[ast.AST]:
    """Every expression of ``tree`` that is a fix."""
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield from (k.value for k in node.keywords if k.arg == "fix")
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "contract_record" and len(node.args) >= 6:
                yield node.args[5]
        elif isinstance(node, ast.Dict):
            yield from (value for key, value in zip(node.keys, node.values, strict=True)
                        if isinstance(key, ast.Constant) and key.value == "fix")
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and _FIX_NAME.match(t.id) for t in targets):
                yield node.value
    for function in functions:
        returns = [n.value for n in ast.walk(function) if isinstance(n, ast.Return)]
        if function.name.endswith("_fix"):
            yield from (value for value in returns if value is not None)
        elif function.returns is not None and ast.unparse(function.returns) == "tuple[str, str]":
            yield from (value.elts[1] for value in returns  # (what, fix)
                        if isinstance(value, ast.Tuple) and len(value.elts) == 2)


def _literal_fixes(tree: ast.Module) -> Iterator[str]:
    """The text after ``Fix:`` in every string literal of ``tree`` (a message written whole)."""
    for node in ast.walk(tree):
        for text in _texts(node) if isinstance(node, ast.Constant | ast.JoinedStr) else []:
            if "Fix:" in text:
                yield text.split("Fix:", 1)[1]


def collect_fixes() -> list[tuple[str, str]]:
    """``(file:line, text)`` of every fix in :data:`PACKAGES`."""
    fixes = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            where = str(path.relative_to(REPO))
            for node in _fix_nodes(tree):
                fixes += [(f"{where}:{getattr(node, 'lineno', '?')}", t) for t in _texts(node)]
            fixes += [(where, text) for text in _literal_fixes(tree)]
    return fixes


# ---------------------------------------------------------------------------- what exists
def _repo_file_names() -> set[str]:
    names: set[str] = set()
    for _folder, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("runs", "data")
                   and not d.endswith(".egg-info") and d != "__pycache__"]
        names.update(files)
    return names


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, flags=re.MULTILINE))


def cli_commands() -> dict[str, set[str]]:
    """Each ``isbench`` subcommand and its option strings."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name: {o for action in parser._actions for o in action.option_strings}
            for name, parser in sub.choices.items()}


def problems(text: str, file_names: set[str] | None = None) -> list[str]:
    """What ``text`` names that does not exist: a path, a make target, a CLI command or option."""
    file_names = _repo_file_names() if file_names is None else file_names
    out = []
    for token in _PATH.findall(text):
        exists = (REPO / token).exists() if "/" in token else token in file_names
        if not exists:
            out.append(f"no file {token!r}")
    commands = cli_commands()
    for tool, rest in _COMMAND.findall(text):
        words = [w for w in rest.split() if UNKNOWN not in w]
        if not words:
            continue
        if tool == "make":
            if words[0] not in make_targets():
                out.append(f"no make target {words[0]!r}")
        elif words[0] not in commands:
            out.append(f"no isbench command {words[0]!r}")
        else:
            out += [f"no option {w} of `isbench {words[0]}`" for w in words[1:]
                    if w.startswith("--") and w.split("=")[0] not in commands[words[0]]]
    return out


# ---------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def fixes() -> list[tuple[str, str]]:
    return collect_fixes()


class TestFixesNameWhatExists:
    def test_the_scan_finds_the_fixes(self, fixes):
        texts = [text for _, text in fixes]
        assert len(texts) > 100
        # one of each kind of source: a fix= keyword, a FIX_ constant, a (what, fix) pair, a
        # literal "Fix:" and a table of fixes
        for needle in ("give it as YYYY-MM-DD", "the upstream schema lost this column",
                       "configs/default.yaml lists every key", "isbench run --date",
                       "clip harder"):
            assert any(needle in t for t in texts), needle

    def test_every_fix_names_existing_files_targets_and_commands(self, fixes):
        names = _repo_file_names()
        broken = [f"{where}: {issue} in {text!r}" for where, text in fixes
                  for issue in problems(text, names)]
        assert not broken, "\n".join(broken)

    @pytest.mark.parametrize(("text", "expected"), [
        ("see configs/demo2.yaml", ["no file 'configs/demo2.yaml'"]),
        ("copy prod.toml", ["no file 'prod.toml'"]),
        ("run `make demos`", ["no make target 'demos'"]),
        ("run `isbench rerun --date {}`", ["no isbench command 'rerun'"]),
        ("run `isbench run --day 2026-11-28`", ["no option --day of `isbench run`"]),
        ("see configs/default.yaml, run `make test` or `isbench suites --check`", []),
        ("fix the source/target join of {}/x.yaml", []),
    ], ids=["path", "file_name", "make", "command", "option", "all_exist", "not_paths"])
    def test_the_checker_tells_a_missing_name(self, text, expected):
        assert problems(text) == expected


class TestDidYouMean:
    """A close misspelling of a key gets the key it resembles; a far one the file that lists
    every key (which must exist: configs/default.yaml)."""

    def test_lerner_gets_learner(self):
        with pytest.raises(ConfigError) as info:
            IsbenchConfig.from_mapping({"proposal": {"lerner": "auto"}})
        assert "proposal.lerner: unknown key (did you mean proposal.learner?)" in info.value.what
        assert info.value.fix == "rename proposal.lerner to proposal.learner"

    def test_a_far_key_points_at_the_default_config(self):
        with pytest.raises(ConfigError) as info:
            IsbenchConfig.from_mapping({"proposal": {"zzz": 1}})
        assert "configs/default.yaml" in info.value.fix
        assert (REPO / "configs" / "default.yaml").is_file()
