"""Issue 19's acceptance, through the real flow: after a first run (what ``make demo`` does) and
``isbench backfill`` of three more dates, ``<output_root>/index.html`` shows four dates in every
plot in headless Chromium and ``isbench history`` prints four rows; the ``isbench-history``
artifact holds them; a failed run becomes a gap on the page (and nothing with
``tracking.history: false``).

Four 1-day windows of the small scenario (as ``tests/e2e/test_cli.py``'s backfill), so each
date has its own inputs; the page's figures from every kind of report (gaps, DR, three
candidates) are unit-tested in ``tests/core/report/test_history.py``.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from deployments.cli import main
from is_core.report.history_page import FIGURES
from is_core.simulate.clicklog import ClickScenario, write_scenario
from tests.conftest import RUN_DATE, SMALL_ROWS, small_config
from tests.e2e.test_html_browser import browse, chromium  # noqa: F401 - the fixture

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

DATES = ["2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"]

#: Run in the page by Chromium: what it laid out, per chart, as JSON in <pre id="measured">.
MEASURE = """<script>
const charts = [...document.querySelectorAll("svg.chart")].map(svg => {
  const box = svg.getBoundingClientRect();
  return {title: svg.getAttribute("aria-label"), width: box.width, height: box.height,
          lines: [...svg.querySelectorAll("polyline")].map(p => {
            const b = p.getBBox();
            return {points: p.points.numberOfItems, width: b.width, height: b.height};
          }),
          circles: svg.querySelectorAll("circle").length,
          promotions: svg.querySelectorAll("g.marker.promotion").length};
});
const out = document.createElement("pre");
out.id = "measured";
out.textContent = JSON.stringify(charts);
document.body.appendChild(out);
</script>"""


@pytest.fixture(scope="module", autouse=True)
def prefect_logging_outside_capture():
    """As in test_cli: Prefect's console handler must not keep a test's closed capture."""
    import prefect.main  # noqa: F401


def _write_config(config, path: Path) -> str:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return str(path)


@pytest.fixture(scope="module")
def four_dates(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("history")
    write_scenario(root / "data", ClickScenario(seed=3), end_date=RUN_DATE, n_days=4,
                   rows_per_day=SMALL_ROWS)
    # the cheapest runs that still promote: one proposal learner, two candidates, no DR model
    # (4 warm runs: 12 s against 39 s with learner `auto`, the recalibrated candidate and DR,
    # on 2 shared cores)
    config = small_config(root / "data", root / "runs", data={"window_days": 1},
                          evaluation={"n_boot": 50}, validation={"data_docs": False},
                          proposal={"learner": "logistic", "numeric_basis": "linear"},
                          weights={"doubly_robust": False},
                          train={"recalibrate": False, "n_estimators": 30})
    config_file = _write_config(config, root / "config.yaml")
    assert main(["run", "--date", DATES[0], "--config", config_file]) == 0
    assert main(["backfill", "--start", DATES[1], "--end", DATES[-1],
                 "--config", config_file]) == 0
    return config, config_file


class TestFourDates:
    def test_every_plot_shows_four_dates_in_chromium(self, chromium, four_dates,  # noqa: F811
                                                     tmp_path):
        config, _ = four_dates
        page = Path(config.output_root) / "index.html"
        measured = tmp_path / "index.html"
        measured.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
        dom = browse(chromium, measured, tmp_path, "--dump-dom").stdout
        charts = json.loads(html.unescape(re.search(
            r'<pre id="measured">(.*?)</pre>', dom, flags=re.S).group(1)))
        assert [c["title"] for c in charts] == [title for title, _ in FIGURES.values()]
        for chart in charts:
            assert chart["width"] > 100 and chart["height"] > 50, chart
            assert chart["lines"] and chart["circles"] >= len(DATES), chart
            assert chart["promotions"] >= 1, "day one promotes: marked on every plot"
            for line in chart["lines"]:
                assert line["points"] == len(DATES), (chart["title"], line)
                assert line["width"] > 0, (chart["title"], line)  # spans the four dates

    def test_each_date_links_to_its_report(self, four_dates):
        config, _ = four_dates
        root = Path(config.output_root)
        links = re.findall(r'<a href="([^"]+)">', (root / "index.html").read_text())
        assert links[:len(DATES)] == [f"{date}/report.html" for date in DATES]
        assert all((root / link).is_file() for link in links)

    def test_isbench_history_prints_four_rows(self, four_dates, capsys):
        _, config_file = four_dates
        capsys.readouterr()
        assert main(["history", "--config", config_file]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("run date") and len(lines) == 1 + len(DATES)
        assert [line.split()[:2] for line in lines[1:]] == [[d, "published"] for d in DATES]
        assert main(["history", "--config", config_file, "--format", "json", "--last",
                     "2"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["run_date"] for r in rows] == DATES[2:]
        assert rows[-1]["gates"]["ess_fraction"]["fail_threshold"] == 0.01

    def test_the_history_artifact_has_one_row_per_date(self, four_dates):
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        config, _ = four_dates
        with get_client(sync_client=True) as client:
            artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["isbench-history"])))
        ours = sorted((a for a in artifacts if str(config.output_root) in a.description),
                      key=lambda a: a.created)
        assert len(ours) == len(DATES)  # one per run
        table = ours[-1].data if isinstance(ours[-1].data, list) else json.loads(ours[-1].data)
        assert [r["run_date"] for r in table] == DATES
        assert table[0]["promoted"] is True and table[0]["new_champion"].startswith("v1 ")


class TestFailedRun:
    def test_a_failed_run_is_a_gap_and_history_false_writes_nothing(self, four_dates,
                                                                     tmp_path, capsys):
        config, _ = four_dates
        root = tmp_path / "runs"
        shutil.copytree(config.output_root, root)
        page = root / "index.html"
        before = page.read_bytes()
        failing = config.model_copy(update={"output_root": str(root)})
        off = failing.model_copy(update={"tracking": failing.tracking.model_copy(
            update={"history": False})})
        missing = "2026-11-29"  # no partition: fails at load
        assert main(["run", "--date", missing, "--config",
                     _write_config(off, tmp_path / "off.yaml")]) == 2
        assert page.read_bytes() == before
        assert main(["run", "--date", missing, "--config",
                     _write_config(failing, tmp_path / "on.yaml")]) == 2
        text = page.read_text()
        assert text.count('<tr class="gap">') == 1 and "failed at stage &#x27;load&#x27;" in text
        assert text.count('class="marker gap"') == len(FIGURES)
        capsys.readouterr()
        assert main(["history", "--config", str(tmp_path / "on.yaml")]) == 0
        last = capsys.readouterr().out.splitlines()[-1]
        assert last.startswith(f"{missing}  gap") and "failed at stage 'load'" in last
