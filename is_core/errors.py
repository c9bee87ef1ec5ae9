"""The small, named hierarchy of errors isbench raises.

Every error says what failed and what to do about it, so that the message a tired engineer reads
in the Prefect UI at 3 a.m. is enough to act on.
"""

from __future__ import annotations

from typing import Any


class IsbenchError(Exception):
    """Base class: ``what`` failed, and the ``fix``.

    Parameters
    ----------
    what : str
        What went wrong, naming the column, file, partition or parameter.
    fix : str
        What the user should do about it.
    details : dict, optional
        Machine-readable context (written to failure records and report.json).
    """

    stage: str = "isbench"

    def __init__(self, what: str, fix: str = "", details: dict[str, Any] | None = None) -> None:
        self.what = what
        self.fix = fix
        self.details = dict(details or {})
        super().__init__(f"{what}. Fix: {fix}" if fix else what)

    def to_record(self) -> dict[str, Any]:
        """A JSON-serializable record of the error for failure files and artifacts."""
        return {
            "error": type(self).__name__,
            "stage": self.stage,
            "what": self.what,
            "fix": self.fix,
            "details": self.details,
        }


class ConfigError(IsbenchError):
    """The configuration is invalid (unknown column, bad parameter, path outside the data root)."""

    stage = "config"


class DataContractError(IsbenchError):
    """An input file, partition or configured column is missing or unreadable."""

    stage = "load"


class DataValidationError(IsbenchError):
    """The data broke one or more expectations of the validation suite.

    ``failures`` lists one dict per failed expectation with ``role``, ``column``, ``rule``,
    ``observed``, ``expected`` and ``fix``.
    """

    stage = "validate"

    def __init__(self, failures: list[dict[str, Any]], role: str = "") -> None:
        self.failures = failures
        lines = [
            f"  - [{f.get('role', role)}] column {f.get('column')!r}: {f.get('rule')} "
            f"(observed {f.get('observed')}, expected {f.get('expected')}). Fix: {f.get('fix')}"
            for f in failures
        ]
        header = f"{len(failures)} expectation(s) failed on the {role or 'input'} data:"
        what = "\n".join([header, *lines])
        super().__init__(
            what,
            fix="correct the upstream data or the config, then re-run the date",
            details={"failures": failures},
        )


class ProposalFitError(IsbenchError):
    """The proposal (domain classifier) cannot be fitted on these inputs."""

    stage = "proposal"


class WeightDiagnosticsError(IsbenchError):
    """The importance weights failed a diagnostic gate (ESS, k-hat, domain AUC, ...)."""

    stage = "weights"


class TrainingError(IsbenchError):
    """The CTR model could not be trained or saved."""

    stage = "train"


class RegistryError(IsbenchError):
    """The model registry is missing a version or alias, or a model cannot be registered."""

    stage = "promote"


class ConcurrentRunError(IsbenchError):
    """Another run of the same run date holds that date's lock."""

    stage = "lock"
