"""prefect.yaml and ``isbench serve`` describe the same deployment: same cron, valid parameters."""

from __future__ import annotations

import importlib

import yaml
from prefect.cli.deploy._models import PrefectYamlModel

from deployments.schedule import DEFAULT_CRON, DEPLOYMENT_NAME
from is_core.config import IsbenchConfig
from tests.conftest import REPO_ROOT

PREFECT_YAML = REPO_ROOT / "prefect.yaml"


def load_prefect_yaml() -> PrefectYamlModel:
    return PrefectYamlModel.model_validate(yaml.safe_load(PREFECT_YAML.read_text()))


class TestPrefectYaml:
    def test_is_a_valid_prefect_project_file(self):
        model = load_prefect_yaml()
        assert {d.name for d in model.deployments} == {DEPLOYMENT_NAME, "backfill"}

    def test_daily_schedule_is_the_serve_cron_with_a_timezone(self):
        daily = next(d for d in load_prefect_yaml().deployments if d.name == DEPLOYMENT_NAME)
        assert [(s.cron, s.timezone) for s in daily.schedules] == [(DEFAULT_CRON, "UTC")]
        schedule_config = daily.schedules[0].parameters["config"]
        assert IsbenchConfig.model_validate(schedule_config).timezone == daily.schedules[0].timezone

    def test_entrypoints_are_flows_and_parameters_validate(self):
        for deployment in load_prefect_yaml().deployments:
            path, name = deployment.entrypoint.split(":")
            module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
            flow = getattr(module, name)
            assert flow.name == deployment.entrypoint.split(":")[1]
            IsbenchConfig.model_validate(deployment.parameters["config"])

    def test_one_daily_run_at_a_time(self):
        daily = next(d for d in load_prefect_yaml().deployments if d.name == DEPLOYMENT_NAME)
        assert daily.concurrency_limit.limit == 1
