"""tau-bench evaluations through the evaluate flow on a real Prefect server: trials and pass^k, and an `openai:`
agent calling retail tools natively (the real openai client against a local HTTP server)."""

import json

import datasets
import pytest

from core.config import build_config
from roleplay.config import EvalConfig
from core.records import dialogues_from_dataset
from envs.taubench.data import fresh_database, load_tasks
from envs.taubench.retail import TOOLS
from flows.evaluate import evaluate
from tasks.evaluation import simulation_fingerprint, trial_config
from chat_server import ChatServer

SMALL = ["benchmark=retail", "split=test", "n_tasks=2", "max_messages=3", "agent_sampling.max_new_tokens=12",
         "user_sampling.max_new_tokens=12"]


def _saved(report):
    return dialogues_from_dataset(datasets.load_from_disk(f"{report.run_dir}/dialogues"))


def test_a_retail_evaluation_plays_every_task_in_each_trial_and_reports_pass_hat_k(prefect_server, tmp_path, tiny):
    roles = [f"agent.spec=hf:{tiny}", f"user.spec=hf:{tiny}", "agent_sampling.temperature=1.0", "agent_sampling.seed=0"]
    report = evaluate(build_config(EvalConfig, "embedded", [*SMALL, *roles, "trials=3", f"runs_dir={tmp_path}"]))
    saved = _saved(report)
    assert report.metrics.dialogues == 6 and report.trials == 3 and set(report.pass_hat_k) == {1, 2, 3}
    assert report.pass_hat_k[1] == pytest.approx(report.metrics.success_rate)
    assert report.split_ceiling.tasks == 115 and report.split_ceiling.success_rate == 1.0
    assert sorted(d.scenario.task_id for d in saved) == sorted(report.task_ids * 3)
    assert all(d.scenario.domain == "retail" for d in saved)
    firsts = [next(m.content for m in d.messages if m.role == "assistant") for d in saved]
    assert len(set(firsts)) > 1  # trials sample with different seeds
    one = evaluate(build_config(EvalConfig, "embedded", [*SMALL, *roles, "trials=1", f"runs_dir={tmp_path}"]))
    assert one.cached  # trial 0 is the single-trial run
    assert "pass^1" in (tmp_path / report.run_dir.split("/")[-1] / "report.md").read_text()


def test_every_trial_has_a_cache_key_of_its_own_even_without_seeds():
    cfg = EvalConfig(benchmark="retail", split="test", trials=3, agent_sampling={"temperature": 0.7})
    keys = [simulation_fingerprint(trial_config(cfg, t), ["retail-test-0"], "agent", "user", t) for t in range(3)]
    assert len(set(keys)) == 3
    assert keys[0] == simulation_fingerprint(cfg, ["retail-test-0"], "agent", "user")  # trial 0 = the one-trial run


def test_an_openai_agent_calls_retail_tools_natively_and_reads_malformed_calls_as_errors(prefect_server, tmp_path, tiny):
    task = load_tasks("retail", "test")[0]

    def reply(body):
        turn = len(server.requests) - 1
        if turn == 0:
            return {"content": None, "tool_calls": [{"id": "call_0", "type": "function", "function": {
                "name": "get_user_details", "arguments": json.dumps({"user_id": task.user_id})}}]}
        if turn == 1:
            return {"content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
                "name": "get_user_details", "arguments": '{"user_id": '}}]}
        return "How can I help?"

    with ChatServer(reply=reply) as server:
        cfg = build_config(EvalConfig, "embedded", [*SMALL, "n_tasks=1", "agent_format=tools", "agent_prompt=full",
                                                    "agent.spec=openai:tiny",
                                                    f"agent.base_url={server.url}", f"user.spec=hf:{tiny}",
                                                    f"runs_dir={tmp_path}"])
        report = evaluate(cfg)
    first, second, third = server.requests[:3]
    assert {t["function"]["name"] for t in first["tools"]} == set(TOOLS) and len(first["tools"]) == 16
    system = first["messages"][0]["content"]
    assert system.startswith("# Retail agent policy") and "<tool_call>" not in system  # the policy; tools go natively
    result = second["messages"][-1]
    assert result["role"] == "tool" and result["tool_call_id"] == "call_0"
    assert json.loads(result["content"]) == fresh_database("retail")["users"][task.user_id]
    failed, answer = third["messages"][-2:]  # the malformed call keeps its id, the error answers it
    assert failed["tool_calls"][0]["id"] == "call_1" and answer["tool_call_id"] == "call_1"
    assert answer["role"] == "tool" and answer["content"].startswith("Error: malformed tool call (arguments are not JSON")
    assert report.metrics.api_calls == 2 and report.metrics.valid_call_rate == 0.5
    (dialogue,) = _saved(report)
    assert dialogue.messages[1].tool_calls[0].id == "call_0"
