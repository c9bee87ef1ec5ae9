"""The ``isbench`` command line: backfill, report, registry (real flow runs, small data), and
what it prints for a broken config file or a failed validation."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from deployments.cli import build_parser, main
from tests.conftest import RUN_DATE, small_config

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]

DATES = ["2026-11-26", "2026-11-27", "2026-11-28"]


@pytest.fixture(scope="module", autouse=True)
def prefect_logging_outside_capture():
    """Set Prefect's logging up (the first ``from prefect import flow`` does) before a test
    captures output: its console handler keeps the stream it was given, and a test's capsys
    stream is closed once that test ends (later runs then fail on "I/O on closed file")."""
    import prefect.main  # noqa: F401


@contextlib.contextmanager
def prefect_console_to_stderr():
    """Point Prefect's console log handlers at the current ``sys.stderr`` (a test's capture,
    which exists only in the test's call phase), so the test sees Prefect's log lines."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(logging.getLogger(name)
                                      for name in list(logging.root.manager.loggerDict))]
    handlers = {id(h): h for logger in loggers for h in logger.handlers
                if isinstance(h, PrefectConsoleHandler)}.values()
    saved = [(handler, handler.stream) for handler in handlers]
    for handler, _ in saved:
        handler.setStream(sys.stderr)
        handler.console.file = sys.stderr
    try:
        yield
    finally:
        for handler, stream in saved:
            handler.setStream(stream)
            handler.console.file = stream


@pytest.fixture(scope="module")
def backfilled(small_data_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """A 3-day backfill with a 1-day window, so every date has its own inputs."""
    root = tmp_path_factory.mktemp("cli")
    config = small_config(small_data_root, root / "runs", data={"window_days": 1})
    config_file = root / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    code = main(["backfill", "--start", DATES[0], "--end", DATES[-1],
                 "--config", str(config_file)])
    return code, config, config_file


class TestBackfill:
    def test_three_days_make_three_run_folders(self, backfilled):
        code, config, _ = backfilled
        assert code == 0
        runs = Path(config.output_root)
        assert sorted(p.name for p in runs.iterdir() if p.name[:1].isdigit()) == DATES
        for date in DATES:
            report = json.loads((runs / date / "report.json").read_text())
            assert report["run_date"] == date
            assert report["inputs"]["days"] == [date]

    def test_each_date_registers_its_own_version_in_order(self, backfilled, capsys):
        _, config, config_file = backfilled
        assert main(["registry", "--config", str(config_file)]) == 0
        out = capsys.readouterr().out
        for version, date in enumerate(DATES, start=1):
            assert f"v{version}  run date {date}" in out
        champion = json.loads((Path(config.output_root) / "registry" / "aliases" /
                               "champion.json").read_text())
        decisions = [json.loads((Path(config.output_root) / d / "report.json").read_text())
                     ["promotion"] for d in DATES]
        promoted = [d["challenger"]["version"] for d in decisions if d["promote"]]
        assert decisions[0]["promote"]  # nothing to compare with
        assert champion["version"] == promoted[-1]

    def test_end_before_start_is_refused(self, backfilled, capsys):
        _, _, config_file = backfilled
        assert main(["backfill", "--start", DATES[-1], "--end", DATES[0],
                     "--config", str(config_file)]) == 2
        assert "before its start" in capsys.readouterr().err


class TestReport:
    def test_prints_where_the_report_is(self, backfilled, capsys):
        _, config, config_file = backfilled
        assert main(["report", DATES[1], "--config", str(config_file)]) == 0
        lines = capsys.readouterr().out.splitlines()
        expected = (Path(config.output_root) / DATES[1]).resolve()
        assert str(expected / "report.md") in lines and str(expected / "report.json") in lines

    def test_missing_date_says_how_to_make_it(self, backfilled, capsys):
        _, _, config_file = backfilled
        assert main(["report", "2026-01-01", "--config", str(config_file)]) == 2
        assert "isbench run --date 2026-01-01" in capsys.readouterr().err


# ---------------------------------------------------------------------------- broken config files
#: the arguments besides --config each subcommand with a --config needs
CONFIG_COMMANDS = {
    "run": ["--date", DATES[-1]], "demo": [], "backfill": ["--start", DATES[-1], "--end",
                                                          DATES[-1]],
    "report": [DATES[-1]], "registry": [], "suites": [], "serve": [], "history": [],
}


def _commands_with_config() -> set[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name for name, parser in sub.choices.items()
            if any("--config" in a.option_strings for a in parser._actions)}


class TestBrokenConfigFile:
    """Issue 11, item 5: a broken config file exits 2 with a ConfigError naming the file, the
    line (and column, for a syntax error), the key and the fix; a YAML or TOML syntax error was
    a bare parser error (PyYAML's multi-line dump) and exit 1."""

    @pytest.mark.parametrize(("name", "text", "expected"), [
        ("bad.yaml", "x: [1, 2\n",
         "isbench: invalid YAML in {path}, line 2, column 1: expected ',' or ']', but got "
         "'<stream end>' (while parsing a flow sequence at line 1, column 4). Fix: correct the "
         "YAML syntax at line 2 of {path}"),
        ("bad.toml", "[proposal\nC=1\n",
         "isbench: invalid TOML in {path}, line 1, column 10: Expected ']' at the end of a "
         "table declaration. Fix: correct the TOML syntax at line 1 of {path}"),
        ("unknown.yaml", "proposal:\n  n_folds: 3\n  Cc: 1\n",
         "isbench: invalid config {path}: proposal.Cc (line 3): unknown key (did you mean "
         "proposal.C?). Fix: rename proposal.Cc to proposal.C"),
        ("value.toml", "[proposal]\nC = -1\n",
         "isbench: invalid config {path}: proposal.C (line 2): Input should be greater than 0 "
         "(got -1). Fix: give proposal.C (Inverse L2 strength of the logistic regression) a "
         "valid value"),
    ], ids=["yaml_syntax", "toml_syntax", "unknown_key", "bad_value"])
    def test_exits_2_naming_file_line_and_fix(self, tmp_path, capsys, name, text, expected):
        path = tmp_path / name
        path.write_text(text)
        assert main(["run", "--date", DATES[-1], "--config", str(path)]) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith(expected.format(path=path)), captured.err
        assert captured.err.count("\n") == 1 and not captured.out  # one line, nothing ran

    def test_every_command_with_a_config_file_reports_it_the_same_way(self, tmp_path, capsys):
        assert _commands_with_config() == set(CONFIG_COMMANDS), "add the new command here"
        path = tmp_path / "unknown.yaml"
        path.write_text("data:\n  windowdays: 2\n")
        for command, args in CONFIG_COMMANDS.items():
            assert main([command, *args, "--config", str(path)]) == 2, command
            err = capsys.readouterr().err
            assert err.startswith(f"isbench: invalid config {path}: data.windowdays (line 2): "
                                  "unknown key (did you mean data.window_days?)"), (command, err)


# ---------------------------------------------------------------------------- failed validation
class TestValidationFailureIsPrintedOnce:
    """Issue 11, item 6: a validation failure's detail was printed three times and more (the
    task's and the flow's Prefect state messages, the traceback, the final ``isbench:`` line).
    The final line has it in full; the Prefect messages carry the stage and a one-line summary;
    the failure record keeps the detail."""

    def test_detail_once_in_full_summary_elsewhere(self, small_data_root, tmp_path, capfd):
        data = tmp_path / "data"
        shutil.copytree(small_data_root, data)
        part = data / "source" / f"dt={RUN_DATE}" / "part-0.parquet"
        frame = pd.read_parquet(part)
        frame["clicked"] = frame["clicked"].astype(float)
        frame.loc[:2, "clicked"] = np.nan
        frame.to_parquet(part, index=False)
        config = small_config(data, tmp_path / "runs", validation={"data_docs": False})
        config_file = tmp_path / "config.yaml"
        config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))

        with prefect_console_to_stderr():
            code = main(["run", "--date", RUN_DATE.isoformat(), "--config", str(config_file)])
        assert code == 2
        captured = capfd.readouterr()
        output = captured.out + captured.err
        detail = "impute or drop the null values upstream"  # the null expectation's own fix
        assert output.count(detail) == 1, output
        final = captured.err[captured.err.index("isbench: daily_retrain"):]
        assert final.startswith(f"isbench: daily_retrain {RUN_DATE} failed at stage 'validate': ")
        assert detail in final and "column 'clicked': expect_column_values_to_not_be_null" in final
        # the Prefect log lines above it: the stage and the one-line summary
        assert "Finished in state Failed(" in output and "failed at stage 'validate'" in output
        assert output.count("[source] 'clicked' expect_column_values_to_not_be_null") >= 2
        record = json.loads(next((tmp_path / "runs" / RUN_DATE.isoformat() / "failures")
                                 .glob("*.json")).read_text())
        assert detail in record["what"]


# ---------------------------------------------------------------------------- environment errors
class TestUnwritableOutputFolderExits3:
    """Issue 20, item 4d: a read-only or full output folder ended in a raw ``[Errno 30]`` and
    exit 1; it exits 3 (an environment problem, beside 2 for bad input) naming the folder and
    the fix."""

    @staticmethod
    def _run(small_data_root: Path, tmp_path: Path, output_root: Path) -> int:
        config = small_config(small_data_root, output_root)
        config_file = tmp_path / "config.yaml"
        config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
        return main(["run", "--date", RUN_DATE.isoformat(), "--config", str(config_file)])

    def test_output_root_below_a_file(self, small_data_root, tmp_path, capsys):
        (tmp_path / "a_file").write_text("")  # no one, root included, makes a folder in a file
        root = tmp_path / "a_file" / "runs"
        assert self._run(small_data_root, tmp_path, root) == 3
        err = capsys.readouterr().err
        assert err.startswith(f"isbench: cannot write the output folder {root}: Not a directory")
        assert f"Fix: make {root} writable for this user, or point `output_root`" in err

    def test_read_only_file_system(self, small_data_root, tmp_path, capsys, monkeypatch):
        import errno
        import os

        root = tmp_path / "runs"
        real_mkdir = Path.mkdir

        def read_only(self: Path, *args, **kwargs):  # the output root's mount is read-only
            if self.is_relative_to(root):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", read_only)
        assert self._run(small_data_root, tmp_path, root) == 3
        err = capsys.readouterr().err
        assert err.startswith(f"isbench: cannot write the output folder {root}: Read-only file "
                              "system ([Errno 30] on ")
        assert "then re-run the date" in err

    def test_read_only_folder(self, small_data_root, tmp_path, capsys):
        import os

        if os.geteuid() == 0:
            pytest.skip("chmod does not restrict root: the two tests above cover it")
        root = tmp_path / "runs"
        root.mkdir()
        root.chmod(0o555)
        try:
            assert self._run(small_data_root, tmp_path, root) == 3
        finally:
            root.chmod(0o755)
        assert f"cannot write the output folder {root}: Permission denied" in (
            capsys.readouterr().err)
