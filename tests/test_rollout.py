"""The rollout loop on scripted players: tools run in the real ToolWOZ env, stops and counters hold."""

import json

import pytest

from core.config import SamplingConfig
from core.types import Scenario, Termination
from envs.toolwoz import ToolWOZEnv, oracle_reward
from models.base import ChatModel, Generation
from tasks.react import system_prompt
from tasks.rollout import RETRIES_EXHAUSTED, Episode, run_episodes


class Scripted(ChatModel):
    """Plays a fixed script per conversation; records the batch sizes it was called with."""

    spec = "scripted"

    def __init__(self, script):
        self.script = script  # (prompt messages) -> text
        self.batches = []

    def generate(self, prompts, sampling, n=1):
        self.batches.append(len(prompts))
        return [[Generation(self.script(p), prompt_tokens=10, completion_tokens=5) for _ in range(n)] for p in prompts]

    def fingerprint(self):
        return "scripted"


def _episode(toolwoz, task, **kw):
    scenario = Scenario(domain="toolwoz", task_id=task.id, instruction=task.instruction)
    return Episode(scenario, ToolWOZEnv(toolwoz, task), system_prompt(toolwoz.tool_schemas, "compact"), **kw)


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
    episodes = run_episodes([_episode(toolwoz, t) for t in tasks], agent, customer, SamplingConfig(), SamplingConfig())
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


def test_agent_that_never_speaks_runs_out_of_retries_and_the_turn_cap_stops_the_talk(toolwoz):
    task = toolwoz.split("val")[1]
    agent = Scripted(lambda p: "I am thinking")
    customer = Scripted(lambda p: "are you there?")
    (e,) = run_episodes([_episode(toolwoz, task, max_messages=5, max_agent_steps=2)], agent, customer,
                        SamplingConfig(), SamplingConfig())
    d = e.to_dialogue()
    assert d.outcome.termination == Termination.turn_cap
    assert d.outcome.turns == 6  # the agent answers the 5th message, as JOSH does
    assert [m.content for m in e.visible if m.role == "assistant"] == [RETRIES_EXHAUSTED] * 3
    assert d.outcome.api_calls == 0 and d.outcome.prompt_tokens == 10 * (3 + 6)


@pytest.mark.parametrize("reply", ["", "   "])
def test_empty_user_output_ends_the_dialogue(toolwoz, reply):
    (e,) = run_episodes([_episode(toolwoz, toolwoz.split("val")[2])], Scripted(lambda p: "x"), Scripted(lambda p: reply),
                        SamplingConfig(), SamplingConfig())
    assert e.to_dialogue().outcome.termination == Termination.empty_output and e.visible == []
