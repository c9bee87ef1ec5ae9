"""The error family: every raise in the library and the tasks is one of it, every member is also
a builtin exception, and every member survives pickling (Prefect pickles exceptions into
states) with what failed and the fix intact."""

from __future__ import annotations

import ast
import inspect
import pickle
from pathlib import Path

import pytest

import is_core.errors as errors_module
from is_core.errors import (
    ConfigError,
    DataValidationError,
    IsbenchError,
    OutputFolderError,
    ParameterError,
    ProposalFitError,
    ProposalParameterError,
)
from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT
SOURCES = sorted(p for d in ("is_core", "tasks") for p in (ROOT / d).rglob("*.py"))
BANNED = {"ValueError", "TypeError", "RuntimeError", "Exception"}
FAMILY = sorted((cls for _, cls in inspect.getmembers(errors_module, inspect.isclass)
                 if issubclass(cls, IsbenchError) and cls is not IsbenchError),
                key=lambda cls: cls.__name__)


def _sample(cls: type[IsbenchError]) -> IsbenchError:
    """An instance of ``cls`` built the way the code builds it."""
    if cls is DataValidationError:
        return cls([{"role": "source", "column": "clicked", "rule": "in_set",
                     "observed": 3, "expected": [0, 1], "fix": "map labels to 0/1"}], "source")
    if issubclass(cls, ParameterError):
        return cls("max_weight must be positive, got -1", fix="pass a positive cap",
                   details={"value": -1}, parameter="max_weight")
    return cls("source partition dt=2026-11-27 is missing", fix="backfill the partition",
               details={"partition": "dt=2026-11-27"})


def _raised_names(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every ``raise Name(...)`` / ``raise Name`` in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name):
                out.append((node.lineno, target.id))
    return out


class TestOnlyFamilyErrorsAreRaised:
    @pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
    def test_no_bare_builtin_raise(self, path: Path):
        bare = [f"line {line}: raise {name}" for line, name in _raised_names(path)
                if name in BANNED]
        assert not bare, (f"{path.relative_to(ROOT)}: raise an error of is_core.errors (what "
                          f"failed and the fix) instead: {bare}")

    def test_the_scan_sees_raises(self):
        names = {name for path in SOURCES for _, name in _raised_names(path)}
        assert {"ConfigError", "ParameterError", "InvalidWeightsError"} <= names


class TestHierarchy:
    def test_the_family_is_complete(self):
        assert {cls.__name__ for cls in FAMILY} >= {
            "ConfigError", "ParameterError", "ProposalParameterError", "DataContractError",
            "DataValidationError", "ProposalFitError", "InvalidWeightsError",
            "WeightDiagnosticsError", "TrainingError", "RegistryError", "ConcurrentRunError",
            "OutputFolderError"}

    @pytest.mark.parametrize("cls", FAMILY, ids=lambda c: c.__name__)
    def test_each_error_is_also_a_builtin_exception(self, cls: type[IsbenchError]):
        builtins = [b for b in cls.__mro__ if b.__module__ == "builtins"
                    and b not in (Exception, BaseException, object)]
        assert builtins, f"{cls.__name__} is not also a ValueError, LookupError, ..."
        # the one OSError of the family, never retried: tasks.stages.is_transient excludes every
        # IsbenchError (tests/flows/test_inputs_magnitudes_and_env.py)
        assert not issubclass(cls, OSError) or cls is OutputFolderError, (
            "an OSError is retried as transient unless it is an IsbenchError: make it one")

    def test_exit_codes(self):
        assert {cls.__name__: cls.exit_code for cls in FAMILY if cls.exit_code != 2} == {
            "OutputFolderError": 3}

    def test_proposal_parameter_error_is_both(self):
        error = _sample(ProposalParameterError)
        assert isinstance(error, ParameterError) and isinstance(error, ProposalFitError)
        assert error.stage == "proposal"

    def test_a_config_error_is_caught_as_a_value_error(self):
        with pytest.raises(ValueError, match=r"bad\. Fix: good"):
            raise ConfigError("bad", fix="good")


class TestPickling:
    @pytest.mark.parametrize("cls", [IsbenchError, *FAMILY], ids=lambda c: c.__name__)
    def test_round_trip_keeps_what_fix_and_details(self, cls: type[IsbenchError]):
        error = _sample(cls)
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is cls
        assert (copy.what, copy.fix, copy.details) == (error.what, error.fix, error.details)
        assert str(copy) == str(error) and copy.args == error.args
        assert copy.to_record() == error.to_record()

    def test_subclass_state_survives(self):
        validation = pickle.loads(pickle.dumps(_sample(DataValidationError)))
        assert validation.failures[0]["column"] == "clicked"
        parameter = pickle.loads(pickle.dumps(_sample(ParameterError)))
        assert parameter.parameter == "max_weight"
        assert parameter.details == {"parameter": "max_weight", "value": -1}

    def test_message_says_what_and_fix(self):
        error = _sample(ConfigError)
        assert str(error) == ("source partition dt=2026-11-27 is missing. "
                              "Fix: backfill the partition")
        assert str(ConfigError("only what")) == "only what"
