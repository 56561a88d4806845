"""The rollout loop on scripted players: tools run in the real ToolWOZ env, stops and counters hold."""

import json

import pytest

from core.config import SamplingConfig
from core.types import Scenario, Termination
from envs.registry import domain
from envs.toolwoz.env import ToolWOZEnv, oracle_reward
from roleplay.rollout import RETRIES_EXHAUSTED, AgentFormat, Episode, run_episodes

from conftest import Scripted


def _episode(toolwoz, task, **kw):
    scenario = Scenario(domain="toolwoz", task_id=task.id, instruction=task.instruction)
    return Episode(scenario, ToolWOZEnv(toolwoz, task), AgentFormat.react(domain("toolwoz").react_system("compact")), **kw)


def _ground_truth_agent(toolwoz):
    """Knows the task from the customer's first message (the goal text); makes each ground-truth call, then speaks."""
    by_goal = {t.instruction: t for t in toolwoz.tasks.values()}

    def script(prompt):
        calls = by_goal[prompt[1].content].ground_truth_calls()
        done = sum(1 for m in prompt if m.content.startswith("APIRETURN"))
        if done < len(calls):
            call = {"name": calls[done].name, "parameters": calls[done].arguments}
            return f"PLAN call <COMMAND_END> APICALL {json.dumps(call)}"
        return "PLAN report <COMMAND_END> SPEAK All booked. <COMMAND_END>"

    return script


def test_ground_truth_agent_earns_full_reward_and_the_user_ends(toolwoz):
    tasks = [t for t in toolwoz.split("val") if oracle_reward(toolwoz, t).success][:3]

    def user(prompt):  # first message states the goal; hangs up once the agent has spoken
        goal = next(t.instruction for t in tasks if t.instruction in prompt[0].content)
        return "Thanks! END_CONVERSATION" if len(prompt) > 1 else goal

    agent, customer = Scripted(_ground_truth_agent(toolwoz)), Scripted(user)
    episodes = run_episodes([_episode(toolwoz, t, max_agent_steps=5) for t in tasks], agent, customer,
                            SamplingConfig(), SamplingConfig())
    for e, task in zip(episodes, tasks):
        d = e.to_dialogue()
        assert d.outcome.success and d.outcome.reward == 1.0
        assert d.outcome.termination == Termination.user_ended
        assert d.outcome.api_calls == len(task.ground_truth_calls()) and d.outcome.invalid_calls == 0
        assert d.outcome.turns == 3  # user, agent, user (END)
        assert [m.role for m in d.messages].count("tool") == len(task.ground_truth_calls())
    assert max(customer.batches) == 3 and max(agent.batches) == 3  # one batched call per role and round


def test_malformed_and_invalid_calls_are_counted_and_shown_to_the_agent(toolwoz):
    task = toolwoz.split("val")[0]
    outputs = iter(['APICALL {"name": "search_hotel", "parameters": {', 'APICALL {"name": "fly", "parameters": {}}',
                    "PLAN sorry <COMMAND_END> SPEAK Sorry. <COMMAND_END>"])
    agent = Scripted(lambda p: next(outputs))
    customer = Scripted(lambda p: "hello" if len(p) == 1 else "bye END_CONVERSATION")
    (e,) = run_episodes([_episode(toolwoz, task)], agent, customer, SamplingConfig(), SamplingConfig())
    d = e.to_dialogue()
    assert d.outcome.api_calls == 2 and d.outcome.invalid_calls == 2
    tool_messages = [m.content for m in d.messages if m.role == "tool"]
    assert tool_messages[0].startswith("ERROR: MALFORMED APICALL") and tool_messages[1].startswith("ERROR: INVALID API CALL")
    assert d.outcome.termination == Termination.user_ended


def test_agent_that_never_speaks_runs_out_of_retries_and_the_talk_stops(toolwoz):
    task = toolwoz.split("val")[1]
    agent = Scripted(lambda p: "I am thinking")
    customer = Scripted(lambda p: "are you there?")
    (e,) = run_episodes([_episode(toolwoz, task, max_agent_steps=2)], agent, customer, SamplingConfig(), SamplingConfig())
    d = e.to_dialogue()
    assert d.outcome.termination == Termination.agent_retries_exhausted
    assert [m.content for m in e.visible] == ["are you there?", RETRIES_EXHAUSTED]
    assert d.outcome.api_calls == 0 and d.outcome.prompt_tokens == Scripted.PROMPT_TOKENS * (1 + 2)


def test_turn_cap_stops_the_talk_after_the_agent_answers_the_last_message(toolwoz):
    agent = Scripted(lambda p: "SPEAK Sure. <COMMAND_END>")
    customer = Scripted(lambda p: f"message {len(p)}")
    (e,) = run_episodes([_episode(toolwoz, toolwoz.split("val")[1], max_messages=5)], agent, customer,
                        SamplingConfig(), SamplingConfig())
    assert e.to_dialogue().outcome.termination == Termination.turn_cap
    assert len(e.visible) == 6  # the agent answers the 5th message, as JOSH does


@pytest.mark.parametrize("agent_reply, user_reply, why", [
    ("SPEAK Sure. <COMMAND_END>", "I need a train to cambridge i need a train to cambridge", Termination.non_coherent),
    ("SPEAK thank you very much thank you very much <COMMAND_END>", "hello", Termination.non_coherent),
    ("SPEAK Sure. <COMMAND_END>", 'PLAN book it <COMMAND_END> APICALL {"name": "book_hotel"}', Termination.role_flip),
    ("SPEAK Sure. <COMMAND_END>", "SPEAK Your table is booked.", Termination.role_flip),
    ("  ", "hello", Termination.empty_output),
])
def test_each_stop_condition_ends_the_talk_with_its_reason(toolwoz, agent_reply, user_reply, why):
    customer = Scripted(lambda p: "hello" if len(p) == 1 else user_reply)
    (e,) = run_episodes([_episode(toolwoz, toolwoz.split("val")[3])], Scripted(lambda p: agent_reply), customer,
                        SamplingConfig(), SamplingConfig())
    assert e.to_dialogue().outcome.termination == why and len(e.visible) <= 3


def test_human_turns_never_trip_the_loop_or_role_flip_checks(toolwoz):
    from envs.toolwoz.transcripts import human_dialogues
    from formats.stops import is_non_coherent, is_role_flip

    turns = [m for d in human_dialogues(toolwoz, "val", limit=100) for m in d.messages if m.role == "user"]
    assert len(turns) > 500
    assert not any(is_non_coherent(m.content) or is_role_flip(m.content.replace("END_CONVERSATION", "")) for m in turns)


@pytest.mark.parametrize("reply", ["", "   "])
def test_empty_user_output_ends_the_dialogue(toolwoz, reply):
    (e,) = run_episodes([_episode(toolwoz, toolwoz.split("val")[2])], Scripted(lambda p: "x"), Scripted(lambda p: reply),
                        SamplingConfig(), SamplingConfig())
    assert e.to_dialogue().outcome.termination == Termination.empty_output and e.visible == []
