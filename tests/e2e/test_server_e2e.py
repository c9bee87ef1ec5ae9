"""End to end against a real Prefect server: serve the deployment, run it, look at it in Chromium.

Starts ``prefect server start --host 127.0.0.1`` on a free port (its own PREFECT_HOME under the
test's tmp dir), serves ``daily_retrain`` with ``isbench serve`` (its cron schedule), triggers a
run of a date through the REST API, waits for it, and checks through the REST API that the
deployment has its cron schedule, the run completed with its keyed artifacts, and a run of a
date without data failed with a state message naming the stage. Then headless Chromium (Debian's
``chromium`` driven by Playwright, no browser download) opens the flow run's page, clicks its
Artifacts tab and takes a screenshot. Last, ``prefect deploy`` registers prefect.yaml's backfill
deployment on a process work pool and a ``prefect worker`` runs it. Then ``TestEvents``
creates the automation of deployments/automations/gate-warned.yaml with ``prefect automation
create``, runs a date whose ESS gate warns, reads its ``isbench.*`` events back through the
events API and sees the automation pause the deployment. Every process it started is stopped
by PID.

Without a browser (no root to install one) the test skips with the reason; with ``CI=true`` it
fails instead, because CI installs chromium (``make test`` does, as root).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from is_core.simulate.clicklog import ClickScenario, write_scenario
from tests.conftest import REPO_ROOT, RUN_DATE, SMALL_ROWS, small_config

pytestmark = pytest.mark.slow

REPO = REPO_ROOT
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EXPECTED_ARTIFACTS = {"isbench-validation", "isbench-weight-diagnostics", "isbench-metrics",
                      "isbench-report", "isbench-promotion"}
CRON = "0 3 * * *"
SERVER_START_TIMEOUT = 120
RUN_TIMEOUT = 300


def _missing_prerequisite() -> str | None:
    if not Path(CHROMIUM).is_file():
        return ("no chromium binary: `make test` installs Debian's chromium when run as root "
                "(apt-get install -y chromium); without root this browser test cannot run")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing: run `make install`"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a process we started (and its children, in its own session) by its PID."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the session we created for it: pgid == pid
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass


def _wait_for(predicate, timeout: float, what: str, interval: float = 1.0, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    tails = "\n".join(f"--- {p}:\n{Path(p).read_text()[-3000:]}" for p in logs if Path(p).exists())
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A Prefect server and ``isbench serve`` against it; yields (api, ui, deployment, paths)."""
    missing = _missing_prerequisite()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {missing}")
        pytest.skip(missing)
    tmp = tmp_path_factory.mktemp("server-e2e")
    data = tmp / "data"
    write_scenario(data, ClickScenario(seed=3), end_date=RUN_DATE, n_days=3,
                   rows_per_day=SMALL_ROWS)
    config = small_config(data, tmp / "runs")
    config_file = tmp / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))

    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_UI_API_URL": api,  # the UI on a port other than 4200 must be told its API
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "ISBENCH_HOME": str(REPO),  # prefect.yaml's pull step: where the worker runs flows
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        "PREFECT_LOGGING_LEVEL": "INFO",
    })
    bin_dir = Path(sys.executable).parent
    server_log, serve_log = tmp / "server.log", tmp / "serve.log"
    procs: list[subprocess.Popen] = []
    try:
        with open(server_log, "w") as log:
            procs.append(subprocess.Popen(
                [str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1",
                 "--port", str(port)],
                env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
        client = httpx.Client(base_url=api, timeout=30)

        def healthy() -> bool:
            try:
                return client.get("/health").status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for(healthy, SERVER_START_TIMEOUT, "the Prefect server", logs=[server_log])
        with open(serve_log, "w") as log:
            procs.append(subprocess.Popen(
                [str(bin_dir / "isbench"), "serve", "--config", str(config_file),
                 "--cron", CRON],
                env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))

        def deployment() -> dict | None:
            r = client.get("/deployments/name/daily_retrain/daily-retrain")
            return r.json() if r.status_code == 200 else None

        dep = _wait_for(deployment, 120, "the served deployment", logs=[serve_log])
        yield {"client": client, "api": api, "ui": f"http://127.0.0.1:{port}",
               "deployment": dep, "config": config, "tmp": tmp, "env": env, "procs": procs,
               "logs": [server_log, serve_log]}
        client.close()
    finally:
        for proc in reversed(procs):  # worker and serve first, then the server
            _stop(proc)


def _run_and_wait(served: dict, run_date: str, deployment: dict | None = None,
                  parameters: dict | None = None) -> dict:
    client, dep = served["client"], deployment or served["deployment"]

    def create() -> httpx.Response | None:
        r = client.post(f"/deployments/{dep['id']}/create_flow_run",
                        json={"parameters": parameters or {"run_date": run_date}})
        return None if r.status_code == 503 else r  # SQLite busy while the server warms up

    r = _wait_for(create, 60, "the server to accept a flow run", interval=2,
                  logs=served["logs"])
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]

    def finished() -> dict | None:
        run = client.get(f"/flow_runs/{run_id}").json()
        return run if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED",
                                               "CANCELLED") else None

    return _wait_for(finished, RUN_TIMEOUT, f"flow run of {run_date}", interval=2,
                     logs=served["logs"])


@pytest.fixture(scope="module")
def completed_run(served) -> dict:
    return _run_and_wait(served, RUN_DATE.isoformat())


class TestThroughTheRestApi:
    def test_deployment_has_its_cron_schedule_and_config_form(self, served):
        dep = served["deployment"]
        schedules = [s["schedule"] for s in dep["schedules"]]
        assert [(s.get("cron"), s.get("timezone")) for s in schedules] == [(CRON, "UTC")]
        assert dep["parameters"]["config"]["output_root"] == served["config"].output_root
        form = dep["parameter_openapi_schema"]["properties"]
        assert {"config", "run_date"} <= set(form)
        client = served["client"]

        def scheduled_runs() -> list:
            return client.post("/flow_runs/filter", json={
                "flow_runs": {"deployment_id": {"any_": [dep["id"]]},
                              "state": {"type": {"any_": ["SCHEDULED"]}}}}).json()

        upcoming = _wait_for(scheduled_runs, 60, "the scheduler to create scheduled runs",
                             interval=2, logs=served["logs"])
        times = [dt.datetime.fromisoformat(r["expected_start_time"]) for r in upcoming]
        assert all((t.hour, t.minute) == (3, 0) for t in times)

    def test_triggered_run_completes_with_its_date_and_artifacts(self, served, completed_run):
        run = completed_run
        assert run["state"]["type"] == "COMPLETED", run["state"]
        assert run["name"] == f"daily-retrain-{RUN_DATE.isoformat()}"
        artifacts = served["client"].post("/artifacts/filter", json={
            "artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
        keys = {a["key"] for a in artifacts}
        assert EXPECTED_ARTIFACTS <= keys, keys
        promotion = next(a for a in artifacts if a["key"] == "isbench-promotion")
        assert "PROMOTED" in promotion["data"]
        run_dir = Path(served["config"].output_root) / RUN_DATE.isoformat()
        assert (run_dir / "report.json").is_file() and (run_dir / "model.ubj").is_file()

    def test_failed_run_names_the_stage_and_the_cause(self, served, completed_run):
        run = _run_and_wait(served, "2026-10-01")  # no data for that window
        assert run["state"]["type"] == "FAILED"
        message = run["state"]["message"]
        assert "stage 'load'" in message and "partition dt=2026-09-29" in message, message


class TestInTheBrowser:
    def test_flow_run_page_shows_state_and_artifacts(self, served, completed_run):
        from playwright.sync_api import sync_playwright

        shot = served["tmp"] / "flow-run.png"
        decision_shot = served["tmp"] / "promotion-artifact.png"
        url = f"{served['ui']}/runs/flow-run/{completed_run['id']}"
        promotion = served["client"].post("/artifacts/filter", json={"artifacts": {
            "flow_run_id": {"any_": [completed_run["id"]]},
            "key": {"any_": ["isbench-promotion"]}}}).json()[0]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1700})
                page.goto(url, wait_until="networkidle", timeout=60_000)
                page.get_by_text(f"daily-retrain-{RUN_DATE.isoformat()}").first.wait_for(
                    timeout=60_000)
                page.get_by_text("Completed").first.wait_for(timeout=60_000)
                # The UI's tabs are <li class="p-tab"> items; a URL cannot select one.
                page.locator("li.p-tab", has_text="Artifacts").click()
                page.locator(".p-tab__active", has_text="Artifacts").wait_for(timeout=30_000)
                for key in EXPECTED_ARTIFACTS:  # one card per artifact key
                    page.get_by_text(key, exact=True).first.wait_for(timeout=60_000)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(shot), full_page=True)
                text = page.inner_text("body")
                # The promotion decision itself, rendered on the artifact's own page.
                page.goto(f"{served['ui']}/artifacts/artifact/{promotion['id']}",
                          wait_until="networkidle", timeout=60_000)
                page.get_by_text("Promotion: PROMOTED").first.wait_for(timeout=60_000)
                page.screenshot(path=str(decision_shot), full_page=True)
            except Exception:
                page.screenshot(path=str(served["tmp"] / "failure.png"), full_page=True)
                raise  # failure.png in the test's tmp dir shows what the browser saw
            finally:
                browser.close()
        assert "Can't connect to Server API" not in text
        assert "Completed" in text
        assert all(key in text for key in EXPECTED_ARTIFACTS)
        for png in (shot, decision_shot):
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert png.stat().st_size > 30_000, f"{png.name} is (nearly) blank"
        keep = os.environ.get("ISBENCH_SCREENSHOT_DIR")
        if keep:  # for a human look: ISBENCH_SCREENSHOT_DIR=/tmp/shots make test
            Path(keep).mkdir(parents=True, exist_ok=True)
            for png in (shot, decision_shot):
                shutil.copy2(png, Path(keep) / png.name)


class TestWorkPool:
    """prefect.yaml through a work pool: ``prefect deploy`` + a process worker run a backfill."""

    def test_backfill_deployment_runs_on_a_process_worker(self, served, completed_run):
        env, bin_dir = served["env"], Path(sys.executable).parent
        log = served["tmp"] / "worker.log"
        for command in (["work-pool", "create", "isbench", "--type", "process"],
                        ["--no-prompt", "deploy", "--name", "backfill"]):
            done = subprocess.run([str(bin_dir / "prefect"), *command], env=env, cwd=REPO,
                                  capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        client = served["client"]
        dep = client.get("/deployments/name/backfill/backfill").json()
        assert dep["work_pool_name"] == "isbench"
        assert dep["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
        with open(log, "w") as out:
            served["procs"].append(subprocess.Popen(
                [str(bin_dir / "prefect"), "worker", "start", "--pool", "isbench"],
                env=env, cwd=served["tmp"], stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True))
        date = (RUN_DATE - dt.timedelta(days=1)).isoformat()
        config = served["config"].model_copy(update={"data": served["config"].data.model_copy(
            update={"window_days": 1})})  # the dataset has 3 days: a 1-day window fits 11-27
        run = _run_and_wait(served, date, deployment=dep, parameters={
            "start": date, "end": date, "config": config.model_dump(mode="json")})
        assert run["state"]["type"] == "COMPLETED", (run["state"], log.read_text()[-3000:])
        assert run["name"] == f"backfill-{date}-to-{date}"
        assert (Path(config.output_root) / date / "report.json").is_file()


AUTOMATION_FILE = REPO / "deployments" / "automations" / "gate-warned.yaml"
EVENTS_PIPELINE = "events-e2e"


@pytest.fixture(scope="module")
def events_run(served) -> dict:
    """The gate-warned automation, created with ``prefect automation create`` from its file;
    then one run of the served deployment, as the pipeline ``events-e2e``, whose ESS gate warns
    (warn threshold 0.999) and which promotes (its registry is empty)."""
    bin_dir = Path(sys.executable).parent
    done = subprocess.run([str(bin_dir / "prefect"), "automation", "create", "--from-file",
                           str(AUTOMATION_FILE)], env=served["env"], cwd=served["tmp"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    config = small_config(  # one day and light learners: the events are the point here
        Path(served["config"].data.root), served["tmp"] / "runs-events", name=EVENTS_PIPELINE,
        data={"window_days": 1}, validation={"data_docs": False}, train={"n_estimators": 20},
        proposal={"learner": "logistic", "numeric_basis": "linear", "n_folds": 2},
        weights={"gates": {"min_ess_fraction_warn": 0.999}})
    run = _run_and_wait(served, RUN_DATE.isoformat(), parameters={
        "run_date": RUN_DATE.isoformat(), "config": config.model_dump(mode="json")})
    assert run["state"]["type"] == "COMPLETED", run["state"]
    return {"run": run, "config": config}


def _events_of(served: dict, pipeline: str, expected: set[str]) -> list[dict]:
    """The events of ``isbench.pipeline.<pipeline>`` read back through the events API, once
    every name in ``expected`` is there (the server persists events in batches)."""
    def read() -> list[dict] | None:
        r = served["client"].post("/events/filter", json={"limit": 50, "filter": {
            "resource": {"id": [f"isbench.pipeline.{pipeline}"]}}})
        assert r.status_code == 200, r.text
        found = r.json()["events"]
        return found if expected <= {e["event"] for e in found} else None

    return _wait_for(read, 60, f"events {sorted(expected)}", logs=served["logs"])


class TestEvents:
    """tasks/events.py against the real server: what a warning, promoting run sends, and the
    automation of deployments/automations/gate-warned.yaml acting on it."""

    def test_a_warning_promoting_run_sends_its_events(self, served, events_run):
        run_id = events_run["run"]["id"]
        found = _events_of(served, EVENTS_PIPELINE, {
            "isbench.gate.warned", "isbench.run.completed", "isbench.champion.promoted"})
        names = [e["event"] for e in found]
        assert "isbench.gate.failed" not in names and "isbench.champion.kept" not in names
        assert names.count("isbench.run.completed") == 1
        for event in found:  # every one names its flow run, the way Prefect relates resources
            assert {"prefect.resource.id": f"prefect.flow-run.{run_id}",
                    "prefect.resource.role": "flow-run",
                    "prefect.resource.name": events_run["run"]["name"]} in event["related"]
        warned = next(e for e in found if e["event"] == "isbench.gate.warned"
                      and e["payload"]["gate"] == "ess_fraction")
        assert warned["payload"]["warn_threshold"] == 0.999
        # the ESS fail threshold is weights.min_ess_fraction
        assert warned["payload"]["fail_threshold"] == events_run["config"].weights.min_ess_fraction
        assert 0.01 < warned["payload"]["value"] < 0.999
        assert warned["resource"]["isbench.gate"] == "ess_fraction"
        assert warned["resource"]["isbench.gate.warn_threshold"] == "0.999"
        roles = {r["prefect.resource.role"] for r in warned["related"]}
        assert {"flow-run", "task-run", "flow", "deployment"} <= roles  # Prefect adds the rest

        completed = next(e for e in found if e["event"] == "isbench.run.completed")["payload"]
        report = Path(completed["report"])
        assert report.is_file() and report.parent.name == RUN_DATE.isoformat()
        assert completed["ess_fraction"] == pytest.approx(warned["payload"]["value"])
        assert completed["gates"]["ess_fraction"] == "warn" and completed["promote"] is True
        assert completed["snis_ci_low"] <= completed["snis_target_ctr"] <= completed[
            "snis_ci_high"]
        assert set(completed["logloss"]) == {"weighted", "unweighted", "recalibrated"}
        promoted = next(e for e in found if e["event"] == "isbench.champion.promoted")
        model = f"isbench.model.{EVENTS_PIPELINE}.v{promoted['payload']['champion_version']}"
        assert {(r["prefect.resource.id"], r["prefect.resource.role"])
                for r in promoted["related"]} >= {(model, "model")}
        assert completed["selected"] == promoted["payload"]["challenger"]["model"]

    def test_the_gate_warned_automation_pauses_the_deployment(self, served, events_run):
        client, dep = served["client"], served["deployment"]
        automations = client.post("/automations/filter", json={}).json()
        (automation,) = [a for a in automations if a["name"] == "isbench-gate-warned"]
        assert automation["trigger"]["expect"] == ["isbench.gate.warned"]
        _wait_for(lambda: client.get(f"/deployments/{dep['id']}").json()["paused"], 60,
                  "the automation to pause the deployment", logs=served["logs"])
