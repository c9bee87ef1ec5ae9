"""The small, named hierarchy of errors isbench raises.

Every error says what failed and what to do about it, so that the message a tired engineer reads
in the Prefect UI at 3 a.m. is enough to act on. Every error is also the matching builtin
exception (Prefect's style: ``ParameterBindError(TypeError, PrefectException)``), so a caller can
catch either ``ConfigError`` or ``ValueError``:

=======================  ================  ===========================================
error                    builtin           raised when
=======================  ================  ===========================================
ConfigError              ValueError        the configuration is invalid
ParameterError           ValueError        a library function got an invalid argument
ProposalParameterError   ValueError        ... an argument of the proposal model
DataContractError        ValueError        an input is missing or unreadable
DataValidationError      ValueError        the data broke expectations
ProposalFitError         ValueError        the proposal model cannot be fitted
InvalidWeightsError      ValueError        log weights are empty, NaN or +inf
WeightDiagnosticsError   ValueError        the weights failed a diagnostic gate
TrainingError            RuntimeError      the CTR model cannot be trained or saved
RegistryError            LookupError       a registry version or alias is missing
ConcurrentRunError       RuntimeError      another run holds the run date's lock
OutputFolderError        OSError           an output folder is read-only, not ours or full
=======================  ================  ===========================================

The tasks retry an ``OSError`` (a transient failure) but nothing of this family
(``tasks.stages.is_transient``): an :class:`OutputFolderError` is an ``OSError`` that a retry
cannot cure (a read-only mount stays read-only).

``exit_code`` is what the ``isbench`` command line exits with: 2 for bad input, config or a
failed gate (fix it and re-run), 3 for :class:`OutputFolderError` (an environment problem).
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
    exit_code: int = 2
    """The command line's exit status for this error (2: fix the input or config, re-run)."""

    def __init__(self, what: str, fix: str = "", details: dict[str, Any] | None = None) -> None:
        self.what = what
        self.fix = fix
        self.details = dict(details or {})
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The whole text, what failed and the fix. It is ``str(error)``, except for an error
        whose detail spans many lines (:class:`DataValidationError`): its ``str``, which Prefect
        repeats in state messages, logs and tracebacks, is a one-line summary, and the CLI
        prints this once."""
        if not self.fix:
            return self.what
        joint = "\n" if "\n" in self.what else ". "  # a list of lines gets its fix on a line
        return f"{self.what}{joint}Fix: {self.fix}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefect pickles exceptions into states. The default rebuilds ``cls(*self.args)``,
        # which hands the whole message to ``what`` (and breaks subclasses whose __init__
        # takes other arguments); rebuild from the attributes instead.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))

    def to_record(self) -> dict[str, Any]:
        """A JSON-serializable record of the error for failure files and artifacts."""
        return {
            "error": type(self).__name__,
            "stage": self.stage,
            "what": self.what,
            "fix": self.fix,
            "details": self.details,
        }


def _rebuild(cls: type[IsbenchError], args: tuple[Any, ...], state: dict[str, Any]
             ) -> IsbenchError:
    """Unpickle an :class:`IsbenchError` without calling its ``__init__``."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(IsbenchError, ValueError):
    """The configuration is invalid (unknown column, bad parameter, path outside the data root)."""

    stage = "config"


class ParameterError(IsbenchError, ValueError):
    """A library function or estimator was given an invalid argument.

    ``parameter`` is the argument's own name (``max_weight``, not the config key
    ``weights.clip_max_weight``): the library does not know the pipeline's config. The stage
    functions turn it into a :class:`ConfigError` naming the config key
    (:func:`is_core._validation.config_keys`).
    """

    stage = "parameter"

    def __init__(self, what: str, fix: str = "", details: dict[str, Any] | None = None, *,
                 parameter: str) -> None:
        super().__init__(what, fix, {"parameter": parameter, **(details or {})})
        self.parameter = parameter


class DataContractError(IsbenchError, ValueError):
    """An input file, partition or configured column is missing or unreadable."""

    stage = "load"


class DataValidationError(IsbenchError, ValueError):
    """The data broke one or more expectations of the validation suite.

    ``failures`` lists one dict per failed expectation with ``role``, ``column``, ``rule``,
    ``observed``, ``expected`` and ``fix``. ``what`` (and :attr:`message`) has a line per
    failure; ``str(error)`` is one line naming the failed expectations, since Prefect repeats it
    in the task's and the flow's state messages and logs.
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
        self.args = (_validation_summary(failures, role),)


def _validation_summary(failures: list[dict[str, Any]], role: str, shown: int = 3) -> str:
    """One line: how many expectations failed, the first ``shown`` by role, column and rule."""
    named = [" ".join([f"[{f.get('role', role)}]",
                       *([repr(f["column"])] if f.get("column") else []), str(f.get("rule"))])
             for f in failures[:shown]]
    more = f" and {len(failures) - shown} more" if len(failures) > shown else ""
    return (f"{len(failures)} expectation(s) failed on the {role or 'input'} data: "
            f"{', '.join(named)}{more}. Fix: each one's observed value and fix are in the run's "
            "failure record")


class ProposalFitError(IsbenchError, ValueError):
    """The proposal (domain classifier) cannot be fitted on these inputs."""

    stage = "proposal"


class ProposalParameterError(ParameterError, ProposalFitError):
    """An argument of the proposal model (:class:`is_core.weights.domain.DomainClassifierRatio`)
    is invalid: both a :class:`ParameterError` (the stage maps it to a config key) and a
    :class:`ProposalFitError`."""

    stage = "proposal"


class InvalidWeightsError(IsbenchError, ValueError):
    """Log importance weights no estimator can use: an empty vector, or NaN or +inf values.

    A shift, however large, gives large finite weights; NaN or +inf means the proposal model
    (or the logged propensities) broke upstream, so retrying or clipping cannot help.
    """

    stage = "weights"


class WeightDiagnosticsError(IsbenchError, ValueError):
    """The importance weights failed a diagnostic gate (ESS, k-hat, domain AUC, ...)."""

    stage = "weights"


class TrainingError(IsbenchError, RuntimeError):
    """The CTR model could not be trained or saved."""

    stage = "train"


class RegistryError(IsbenchError, LookupError):
    """The model registry is missing a version or alias, or a model cannot be registered."""

    stage = "promote"


class ConcurrentRunError(IsbenchError, RuntimeError):
    """Another run of the same run date holds that date's lock."""

    stage = "lock"


class OutputFolderError(IsbenchError, OSError):
    """An output folder (``output_root``: run folders, staging, locks; the model registry)
    cannot be written: it is read-only, not this user's, not a folder, or its disk is full.

    An environment problem, not bad input: the command line exits 3 for it, and it is never
    retried (an ``OSError`` that is an :class:`IsbenchError`). ``details`` holds the folder
    (``path``) and the ``errno`` of the ``OSError`` it replaces
    (:func:`is_core.data.atomic.output_folder_errors`).
    """

    stage = "output"
    exit_code = 3
