"""Great Expectations Data Docs on the Dask engine (isbench issue 13).

The Dask engine's validate stage merges each expectation over the partitions and builds GX
Data Docs of the merged results: the same pages as the local engine's for the same inputs
(expectations, verdicts, observed values), their verdicts those of ``results.json``, also when
a partition fails validation. Both engines' stage functions run directly on the small dataset,
with a reference day, so the drift suites run too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from is_core.data.stage import locate_inputs
from is_core.errors import DataValidationError
from tests.conftest import RUN_DATE, small_config

pytestmark = pytest.mark.slow
DOCS = "validation/data_docs/index.html"
CELL = re.compile(r"section-(\d+)-content-block-2-cell-(\d+)-(\d+)$")
HEADER = re.compile(r'id="section-(\d+)-content-block-1-header".*?<h5[^>]*>\s*(.*?)\s*</h5>',
                    re.S)


class _Cells(HTMLParser):
    """The cells of a validation page's expectation tables (sections 2 and on), by id."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[int, int, int], list[str]] = {}
        self.icons: dict[tuple[int, int, int], str] = {}
        self.open: tuple[int, int, int] | None = None
        self.depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        match = CELL.match(a.get("id") or "") if tag == "td" and self.open is None else None
        if match and int(match.group(1)) > 1:
            self.open = tuple(map(int, match.groups()))  # type: ignore[assignment]
            self.depth, self.cells[self.open] = 1, []
        elif self.open is not None:
            self.depth += tag == "td"
            if tag == "i":
                self.icons[self.open] = a.get("class") or ""

    def handle_endtag(self, tag):
        if self.open is not None and tag == "td":
            self.depth -= 1
            self.open = None if self.depth == 0 else self.open

    def handle_data(self, data):
        if self.open is not None:
            self.cells[self.open].append(data)


def _rows(page: Path) -> list[tuple[str, bool, str, str]]:
    """Each expectation row of a validation page: section (column), success, text, observed."""
    html = page.read_text(encoding="utf-8")
    sections = {int(n): name for n, name in HEADER.findall(html)}
    cells = _Cells()
    cells.feed(html)
    out = []
    for key in sorted(k for k in cells.cells if k[2] == 1):
        icon = cells.icons.get(key, "")
        assert "fa-check-circle" in icon or "fa-times" in icon, (page, key, icon)
        text = [" ".join("".join(cells.cells.get((*key[:2], c), [])).split()) for c in (2, 3)]
        out.append((sections[key[0]], "fa-check-circle" in icon, *text))
    return out


def _pages(vdir: Path) -> dict[str, list[tuple[str, bool, str, str]]]:
    """Per suite, the rows of its validation page under ``vdir/data_docs``."""
    pages = sorted((vdir / "data_docs" / "validations").glob("*/*/*/*.html"))
    return {p.relative_to(vdir / "data_docs" / "validations").parts[0]: _rows(p) for p in pages}


@pytest.fixture(scope="module")
def runs(small_data_root: Path, tmp_path_factory: pytest.TempPathFactory, cluster):
    """Per case (passing, bad partition) and engine: (summary or error, validation folder)."""
    from tasks.gx.partitioned import validate_window as dask_validate
    from tasks.gx.window import validate_window as local_validate

    root = tmp_path_factory.mktemp("dask-docs")
    before = RUN_DATE - dt.timedelta(days=1)  # the reference day: a published profile
    reference = small_config(small_data_root, root / "out", data={"window_days": 2})
    local_validate(reference, locate_inputs(reference.data, reference.columns, before),
                   root / "out" / before.isoformat())
    bad = root / "bad"
    shutil.copytree(small_data_root, bad)
    path = bad / "source" / f"dt={RUN_DATE.isoformat()}" / "part-0.parquet"
    frame = pd.read_parquet(path)
    frame.loc[frame.index[:10], "clicked"] = 5
    frame.to_parquet(path, index=False)
    out = {}
    for case, data in (("passing", small_data_root), ("bad partition", bad)):
        config = small_config(data, root / "out", validation={"data_docs": True})
        inputs = locate_inputs(config.data, config.columns, RUN_DATE)
        for engine in ("local", "dask"):
            staging = root / "staging" / f"{engine}-{case.replace(' ', '-')}"
            try:
                outcome = (local_validate(config, inputs, staging) if engine == "local" else
                           dask_validate(config, inputs, staging, cluster.scheduler_address))
            except DataValidationError as error:
                outcome = error
            out[case, engine] = (outcome, staging / "validation")
    return out


CASES = ["passing", "bad partition"]


class TestDaskDataDocs:
    def test_written_at_the_local_engines_path_also_on_failure(self, runs):
        passing, vdir = runs["passing", "dask"]
        assert {s["data_docs"] for s in passing.values()} == {DOCS} == {
            s["data_docs"] for s in runs["passing", "local"][0].values()}
        error, failed_vdir = runs["bad partition", "dask"]
        assert isinstance(error, DataValidationError)
        kept = Path(error.details["validation_dir"])  # the copy the failed run leaves
        for folder in (vdir, failed_vdir, kept):
            assert (folder / "data_docs" / "index.html").is_file()
            assert set(_pages(folder)) == {f"isbench_{role}{kind}" for role in
                                           ("source", "target", "holdout")
                                           for kind in ("", "_drift")}
            assert not (folder / ".data_docs.tmp").exists()
        index = (vdir / "data_docs" / "index.html").read_text(encoding="utf-8")
        assert index.count("validations/isbench_") >= 6

    @pytest.mark.parametrize("case", CASES)
    def test_the_pages_verdicts_are_the_merged_records(self, runs, case):
        _, vdir = runs[case, "dask"]
        results = json.loads((vdir / "results.json").read_text(encoding="utf-8"))
        pages = _pages(vdir)
        for role, summary in results.items():
            gx_records = [r for r in summary["results"] if r["engine"] == "great_expectations"]
            assert len(gx_records) < len(summary["results"])  # isbench's own: not in the docs
            window = len(json.loads((vdir / "suites" / f"isbench_{role}.json").read_text(
                encoding="utf-8"))["expectations"])
            for suite, records in ((f"isbench_{role}", gx_records[:window]),
                                   (f"isbench_{role}_drift", gx_records[window:])):
                shown = pages[suite]
                assert len(shown) == len(records), suite
                for section in {s for s, *_ in shown}:
                    column = None if section == "Table-Level Expectations" else section
                    assert [ok for s, ok, *_ in shown if s == section] == [
                        r["success"] for r in records if r["column"] == column], (suite, section)
        failed = [(suite, section) for suite, rows in pages.items()
                  for section, ok, *_ in rows if not ok]
        assert failed == ([] if case == "passing" else [("isbench_source", "clicked")])

    @pytest.mark.parametrize("case", CASES)
    def test_the_pages_show_the_local_engines_expectations(self, runs, case):
        local, dask = (_pages(runs[case, engine][1]) for engine in ("local", "dask"))
        assert set(dask) == set(local)
        for suite in local:  # section, verdict, expectation text and observed value
            assert dask[suite] == local[suite], suite


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_docs_failure_is_a_warning_and_changes_nothing(small_data_root, tmp_path):
    """Data Docs are optional: a result that names no expectation of its suite (a merge bug)
    leaves no ``data_docs/`` (not half a site) and no verdict changed."""
    from tasks.gx.partitioned import _data_docs
    from tasks.gx.runner import MergedResult

    config = small_config(small_data_root, tmp_path, validation={"data_docs": True})
    record = {"role": "source", "success": False, "rule": "expect_nothing"}
    suites = {"source": {"window": [(record, MergedResult("expect_nothing", {}, False, {}))]}}
    logger, seen = logging.getLogger("tasks.gx.partitioned"), _Messages()
    logger.addHandler(seen)  # outside a Prefect run: the module's logger
    try:
        docs = _data_docs(config, RUN_DATE, {}, {"source": {"parts": []}}, suites, tmp_path)
    finally:
        logger.removeHandler(seen)
    assert docs is None and record["success"] is False
    assert not (tmp_path / "data_docs").exists() and not (tmp_path / ".data_docs.tmp").exists()
    assert any("Data Docs not built" in m and "no expectation of suite" in m
               for m in seen.messages)


def test_a_result_of_no_suite_expectation_is_a_clear_error(tmp_path):
    """A merged result the suite does not hold (suite and partitions built from different
    configs) stops the docs build with the family's error naming the suite and the rule."""
    import great_expectations as gx

    from is_core.errors import DataContractError
    from tasks.gx.runner import MergedBatch, MergedResult, build_docs_from_merged, context_for

    context = context_for(tmp_path / "docs")
    suite = gx.ExpectationSuite(name="isbench_source")
    suite.add_expectation(gx.expectations.ExpectColumnToExist(column="clicked"))
    stray = MergedResult(rule="expect_column_to_exist", kwargs={"column": "position"},
                         success=True, result={})
    with pytest.raises(DataContractError, match="isbench_source") as raised:
        build_docs_from_merged([MergedBatch("source", suite, [stray])], tmp_path / "docs",
                               context)
    assert raised.value.details == {"suite": "isbench_source",
                                    "rule": "expect_column_to_exist"}
    assert "rebuild" in raised.value.fix
