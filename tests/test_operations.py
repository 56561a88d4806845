"""Operations against a real Prefect server and process worker started by `selftrain ops`: deployments
from prefect.yaml, the nightly schedule, parameter overrides, caching shared with command-line runs,
and a failing run that shows as Failed with its reason in the logs."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)

from cli import ops
from core.config import build_config
from roleplay.config import EvalConfig
from core.errors import ConfigError
from flows.evaluate import evaluate
from models.embedded import build_random_model


def run_logs(flow_run_id) -> list[str]:
    """A flow run's log messages, oldest first: what a failed run said."""
    with ops.client(ops.api_url()) as api:
        logs = api.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in sorted(logs, key=lambda log: log.timestamp)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    with pytest.MonkeyPatch.context() as env:  # poll often: the test waits on the scheduler and the worker
        env.setenv("PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS", "2")
        env.setenv("PREFECT_WORKER_QUERY_SECONDS", "1")
        url = ops.up(_free_port())
    try:
        ops.deploy(["pipeline-embedded", "evaluate-embedded"])
        yield url
    finally:
        ops.down()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    model = build_random_model(tmp_path_factory.mktemp("model"))
    return [f"agent.spec=hf:{model}", "n_tasks=2", "max_messages=3", "agent_sampling.max_new_tokens=12",
            f"runs_dir={tmp_path_factory.mktemp('runs')}"]


def _task_states(url: str, flow_run_id) -> dict[str, str]:
    """Task name -> state of a flow run's tasks and of its subflows' tasks."""
    with ops.client(url) as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(
            flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id, *(child.id for child in children)])))
    return {run.name.rsplit("-", 1)[0]: run.state.name for run in runs}


def test_the_nightly_pipeline_is_scheduled_on_a_fresh_server(server):
    deadline = time.monotonic() + 150
    while not (scheduled := ops.status()["scheduled"]) and time.monotonic() < deadline:
        time.sleep(3)
    assert ops.status()["deployments"] == ["evaluate-embedded", "pipeline-embedded"]
    assert scheduled and all(start.endswith("03:00:00+00:00") for _, start in scheduled)


def test_a_deployed_run_takes_overrides_caches_like_the_cli_and_fails_with_its_reason(server, small):
    first = ops.trigger("evaluate-embedded", small, wait=True, timeout_s=600)
    assert first.state.type.value == "COMPLETED", run_logs(first.id)[-5:]
    with ops.client(server) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[first.id])))
    assert {"evaluation-metrics", "evaluation-summary"} <= {a.key for a in artifacts}
    runs_dir = Path(small[-1].split("=", 1)[1])
    (metrics,) = [json.loads(p.read_text()) for p in runs_dir.glob("evaluate-*/metrics.json")]
    assert metrics["metrics"]["dialogues"] == 2 and metrics["task_ids"] and len(metrics["task_ids"]) == 2  # n_tasks=2 took

    again = ops.trigger("evaluate-embedded", small, wait=True, timeout_s=600)
    assert again.state.type.value == "COMPLETED"
    assert _task_states(server, again.id)["simulate_dialogues"] == "Cached"
    assert _task_states(server, first.id)["simulate_dialogues"] == "Completed"

    with temporary_settings({PREFECT_API_URL: server}):  # the same settings from the command line
        cli = evaluate(build_config(EvalConfig, "embedded", small))
    assert cli.cached

    broken = ops.trigger("evaluate-embedded", [*small, "agent.spec=hf:/no/such/model"], wait=True, timeout_s=600)
    assert broken.state.type.value == "FAILED"
    deadline = time.monotonic() + 60  # the run's last log lines reach the server after its state does
    while not (said := any("/no/such/model" in line and "neither an existing path" in line
                           for line in run_logs(broken.id))) and time.monotonic() < deadline:
        time.sleep(1)
    assert said


def test_a_bad_override_is_refused_before_a_run_is_created(server):
    with pytest.raises(ConfigError, match="n_taskz"):
        ops.trigger("evaluate-embedded", ["n_taskz=2"])
    with pytest.raises(ops.OpsError, match="no deployment 'nope'"):
        ops.trigger("nope")
