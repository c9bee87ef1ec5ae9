"""The ``isbench`` command line: backfill, report, registry (real flow runs, small data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from deployments.cli import main
from tests.conftest import small_config

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]

DATES = ["2026-11-26", "2026-11-27", "2026-11-28"]


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
