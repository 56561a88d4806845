"""The evaluation flow on a real Prefect server: metrics, saved dataset, artifacts, and caching."""

import os
from pathlib import Path

import datasets
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

from core.config import build_config
from roleplay.config import EvalConfig
from core.records import dialogues_from_dataset
from flows.evaluate import evaluate
from prefect import flow
from tasks.evaluation import oracle_rewards
from models.embedded import build_random_model
from quality.metrics import EvalReport
from chat_server import ChatServer

SMALL = ["n_tasks=2", "max_messages=3", "agent_sampling.max_new_tokens=12", "user_sampling.max_new_tokens=12"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Both roles played by an untrained tiny model: the flow's behaviour, not the model's, is under test."""
    path = build_random_model(tmp_path_factory.mktemp("model"))
    return [*SMALL, f"agent.spec=hf:{path}", f"user.spec=hf:{path}"]


@flow
def _ceiling_state() -> str:
    """Whether the validation split's oracle rewards (the ceiling) would be read from storage now."""
    return oracle_rewards("toolwoz", "val", return_state=True).name


def _artifact_keys():
    wanted = ["evaluation-metrics", "evaluation-summary", "evaluate-progress"]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=wanted)))
    return {a.key for a in found}


def test_evaluate_reports_saves_and_reuses_cached_dialogues(prefect_server, tmp_path, small):
    cfg = build_config(EvalConfig, "embedded", [*small, f"runs_dir={tmp_path}"])
    first = evaluate(cfg)

    assert first.metrics.dialogues == 2 and not first.cached
    assert 0.0 <= first.metrics.avg_reward <= first.ceiling.reward <= 1.0
    assert 0.9 < first.split_ceiling.reward < 1.0 and first.split_ceiling.tasks == 793
    assert first.metrics.mean_turns >= 1 and first.metrics.completion_tokens > 0
    saved = dialogues_from_dataset(datasets.load_from_disk(f"{first.run_dir}/dialogues"))
    assert sorted(d.scenario.task_id for d in saved) == sorted(set(d.scenario.task_id for d in saved))
    assert sum(d.outcome.completion_tokens for d in saved) == first.metrics.completion_tokens
    assert "success rate" in (tmp_path / first.run_dir.split("/")[-1] / "report.md").read_text()
    assert _artifact_keys() == {"evaluation-metrics", "evaluation-summary", "evaluate-progress"}

    again = evaluate(cfg)
    assert again.cached and _ceiling_state() == "Cached"
    assert again.metrics == first.metrics and again.run_dir != first.run_dir
    saved_report = EvalReport.model_validate_json((tmp_path / again.run_dir.split("/")[-1] / "metrics.json").read_text())
    assert saved_report.metrics == first.metrics and saved_report.agent_fingerprint == first.agent_fingerprint

    resampled = evaluate(build_config(EvalConfig, "embedded", [*small, f"runs_dir={tmp_path}", "agent_sampling.temperature=1.0",
                                                               "agent_sampling.seed=1"]))
    assert not resampled.cached and _ceiling_state() == "Cached"

    more_tasks = evaluate(build_config(EvalConfig, "embedded", [*small, f"runs_dir={tmp_path}", "n_tasks=3"]))
    assert not more_tasks.cached and len(more_tasks.task_ids) == 3


def test_the_agenda_user_plays_the_customer_with_no_model_behind_it(prefect_server, tmp_path, small):
    agent_only = [o for o in small if not o.startswith("user.spec=")]
    cfg = build_config(EvalConfig, "embedded", [*agent_only, f"runs_dir={tmp_path}", "max_messages=5"])
    assert cfg.user.spec == "agenda"  # the offline default
    report = evaluate(cfg)
    saved = dialogues_from_dataset(datasets.load_from_disk(f"{report.run_dir}/dialogues"))
    openings = [next(m.content for m in d.messages if m.role == "user") for d in saved]
    assert all(d.user_model == "agenda" for d in saved) and all(o.lower().startswith(("i ", "can you")) for o in openings)
    assert report.metrics.dialogues == 2 and report.user_fingerprint == evaluate(cfg).user_fingerprint


def test_a_rate_limit_storm_longer_than_the_client_retries_delays_the_run_but_it_completes_and_leaks_no_key(
        prefect_server, tmp_path, monkeypatch):
    """The client gives up after one retry; the task waits and runs again (Prefect-level retry). The server's errors
    echo the API key back, as some do: it reaches no file the run wrote (runs, cache, Prefect's results and
    database), no Prefect log line and no artifact."""
    secret = "sk-live-LEAKCHECK-5d41402abc4b2a76"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with ChatServer(statuses=[429, 503, 500]) as server:  # attempt 1: 429, 503 -> EndpointError; attempt 2: 500, then 200s
        cfg = build_config(EvalConfig, "embedded", ["agent.spec=openai:tiny", f"agent.base_url={server.url}",
                                                    "agent.max_retries=1", "n_tasks=1", "max_messages=3",
                                                    f"runs_dir={tmp_path}"])
        report = evaluate(cfg)
    assert report.metrics.dialogues == 1 and not report.cached
    assert len(server.requests) > 3  # the three failures, then the answered requests of the retried task
    assert set(server.authorizations) == {f"Bearer {secret}"}  # the key went out, and came back in error bodies

    database = Path(PREFECT_API_DATABASE_CONNECTION_URL.value().split(":///", 1)[1])  # the test server's (and WAL)
    written = [tmp_path, Path(os.environ["SELFTRAIN_STATE_DIR"]), Path(os.environ["SELFTRAIN_CACHE_DIR"])]
    files = [f for root in written for f in root.rglob("*") if f.is_file()] + list(database.parent.glob(f"{database.name}*"))
    assert database in files and len(files) > 10
    assert [str(f) for f in files if secret.encode() in f.read_bytes()] == []
    with get_client(sync_client=True) as client:
        logs, artifacts = [], []
        while page := client.read_logs(limit=200, offset=len(logs)):
            logs += page
        while page := client.read_artifacts(limit=200, offset=len(artifacts)):
            artifacts += page
    assert any("scripted" in log.message or "EndpointError" in log.message for log in logs)  # the failures were logged
    assert [log.message for log in logs if secret in log.message] == []
    assert [a.key for a in artifacts if secret in f"{a.data} {a.description}"] == []


def test_evaluation_shards_on_a_local_dask_cluster_score_what_the_default_runner_scores(prefect_server, tmp_path, small,
                                                                                        monkeypatch):
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())  # what the Dask workers report to
    same = [*small, "n_tasks=3", "shard_size=2", "agent.cpu_threads=1", "user.cpu_threads=1", f"runs_dir={tmp_path}"]
    local = evaluate(build_config(EvalConfig, "embedded", same))
    monkeypatch.setenv("PREFECT_TASKS_REFRESH_CACHE", "true")  # the workers recompute every shard
    on_dask = evaluate(build_config(EvalConfig, "embedded", [*same, "runner.kind=dask", "runner.workers=2"]))
    assert not on_dask.cached and on_dask.metrics == local.metrics
    assert [d.messages for d in _saved(on_dask)] == [d.messages for d in _saved(local)]


def _saved(report):
    return dialogues_from_dataset(datasets.load_from_disk(f"{report.run_dir}/dialogues"))
