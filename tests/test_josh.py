"""The JOSH beam tree on a scripted agent in the real ToolWOZ env: expectations computed by hand.

Task MUL0032 has two ground-truth calls (a hotel search, a restaurant search). With beam 4:
round 1: 1 leaf -> 2 (a, b); a says "hello", b says "hi"; nothing earned.
round 2: 2 -> 4 (a, a2, b, b2); b2 makes the hotel search (earned), the others speak: collapse onto b2.
round 3: 1 -> 2 (c, c2); c2 makes the restaurant search: everything earned, the search stops.
"""

import json

import pytest

from core.config import SamplingConfig
from core.types import Scenario, Termination
from envs.registry import domain
from envs.toolwoz.env import ToolWOZEnv
from roleplay import harvest, josh
from roleplay.rollout import AgentFormat, Episode

from conftest import Scripted

TASK = "MUL0032.json"


def call(c):
    return f"PLAN search <COMMAND_END> APICALL {json.dumps({'name': c.name, 'parameters': c.arguments})}"


def agent_script(toolwoz):
    hotel, restaurant = toolwoz.tasks[TASK].ground_truth_calls()

    def script(i, prompt):
        customer_turns = sum(m.role == "user" and not m.content.startswith("APIRETURN") for m in prompt)
        if prompt[-1].content.startswith("APIRETURN"):
            return "SPEAK Found it. <COMMAND_END>"
        if customer_turns == 1:
            return "SPEAK hello <COMMAND_END>" if i == 0 else "SPEAK hi <COMMAND_END>"
        if customer_turns == 2 and i == 3:
            return call(hotel)
        if customer_turns == 3 and i == 1:
            return call(restaurant)
        return "SPEAK How can I help? <COMMAND_END>"

    return script


@pytest.fixture
def searched(toolwoz):
    task = toolwoz.tasks[TASK]
    episode = Episode(Scenario(domain="toolwoz", task_id=TASK, instruction=task.instruction), ToolWOZEnv(toolwoz, task),
                      AgentFormat.react(domain("toolwoz").react_system("compact")))
    agent = Scripted(agent_script(toolwoz), by_position=True)
    user = Scripted(lambda i, p: f"I need a hotel and a restaurant ({len(p)})", by_position=True)
    (tree,) = josh.run_josh([josh.Search(episode, beam_size=4)], agent, user, SamplingConfig(), SamplingConfig())
    return tree, agent, user


def test_beam_splits_collapses_and_stops_when_everything_is_earned(searched):
    tree, agent, user = searched
    assert len(tree.nodes) == 2 + 4 + 2
    assert [i for i, n in enumerate(tree.nodes) if n.is_successful] == [1, 5, 7]  # b, b2, c2
    assert [i for i, n in enumerate(tree.nodes) if n.is_golden] == [1, 5, 7]
    outcome = tree.dialogue.outcome
    assert outcome.reward == 1.0 and outcome.success and outcome.termination == Termination.all_rewards_earned
    assert tree.dialogue.messages == tree.nodes[7].messages  # the dialogue is the golden path
    # all live leaves in one call per step: agent [2 leaves], [4], [the caller's follow-up], [2], [follow-up]
    assert agent.batches == [2, 4, 1, 2, 1] and user.batches == [1, 2, 1]
    assert tree.agent_usage.prompt_tokens == Scripted.PROMPT_TOKENS * sum(agent.batches)
    assert tree.user_usage.completion_tokens == Scripted.COMPLETION_TOKENS * 4


def test_siblings_share_their_prompt_and_pairs_prefer_the_rewarded_turn(searched):
    tree, _, _ = searched
    a, b = tree.nodes[0], tree.nodes[1]
    assert a.messages[: a.turn_start] == b.messages[: b.turn_start] and a.turn != b.turn
    pairs = harvest.preference_pairs(tree)
    assert [(p.chosen.content, p.rejected.content) for p in pairs] == [
        ("SPEAK hi <COMMAND_END>", "SPEAK hello <COMMAND_END>"),  # round 1: b over a
        (tree.nodes[5].turn[0].content, "SPEAK How can I help? <COMMAND_END>"),  # round 2: b2's search over b
        (tree.nodes[7].turn[0].content, "SPEAK How can I help? <COMMAND_END>"),  # round 3: c2's search over c
    ]
    assert all(p.prompt == n.messages[: n.turn_start] for p, n in zip(pairs, (tree.nodes[1], tree.nodes[5], tree.nodes[7])))
    assert "search_hotel" in pairs[1].chosen.content and pairs[1].chosen.tool_calls


def test_sft_takes_the_golden_path_and_drops_paths_with_errors(searched, toolwoz):
    tree, _, _ = searched
    system = domain("toolwoz").react_system("compact")
    (row,) = harvest.sft_examples([tree], system)
    assert row["messages"][0] == {"role": "system", "content": system}
    assert [m["role"] for m in row["messages"][1:4]] == ["user", "assistant", "user"]
    assert sum(m["content"].startswith("APIRETURN") for m in row["messages"]) == 2

    last = tree.nodes[7]
    messages = list(last.messages)
    result = max(i for i, m in enumerate(messages) if m.role == "tool")
    messages[result] = messages[result].model_copy(update={"content": "ERROR: INVALID API CALL!"})
    with_error = tree.model_copy(update={"nodes": (*tree.nodes[:7], last.model_copy(update={"messages": tuple(messages)}))})
    assert harvest.sft_examples([with_error], system) == []
    low = tree.model_copy(update={"dialogue": tree.dialogue.model_copy(update={
        "outcome": tree.dialogue.outcome.model_copy(update={"reward": 0.5})})})
    assert harvest.sft_examples([low], system) == [] and len(harvest.sft_examples([low], system, min_reward=0.5)) == 1


def test_dpo_and_kto_rows_are_conversational_and_deduplicated(searched, toolwoz):
    tree, _, _ = searched
    system = domain("toolwoz").react_system("compact")
    pairs = harvest.preference_pairs(tree) * 2
    dpo = harvest.dpo_rows(pairs, system)
    assert dpo[0]["prompt"][0]["role"] == "system" and dpo[0]["chosen"][0]["role"] == "assistant"
    kto = harvest.kto_rows(pairs, system)
    assert len(kto) == 6 and sum(r["label"] for r in kto) == 3  # the duplicates are gone


def test_beam_one_is_plain_role_play(toolwoz):
    task = toolwoz.tasks[TASK]
    episode = Episode(Scenario(domain="toolwoz", task_id=TASK, instruction=task.instruction), ToolWOZEnv(toolwoz, task),
                      AgentFormat.react(domain("toolwoz").react_system("compact")), max_messages=5)
    agent = Scripted(lambda i, p: "SPEAK ok <COMMAND_END>", by_position=True)
    user = Scripted(lambda i, p: "hello", by_position=True)
    (tree,) = josh.run_josh([josh.Search(episode, beam_size=1)], agent, user, SamplingConfig(), SamplingConfig())
    assert agent.batches == [1, 1, 1] and not any(n.is_successful for n in tree.nodes)
    assert tree.dialogue.outcome.termination == Termination.turn_cap and harvest.preference_pairs(tree) == []


def test_a_partly_successful_tree_gives_its_path_up_to_the_last_earned_sub_goal(toolwoz):
    """The agent earns the hotel search and never the restaurant one: with min_reward below 1 the row is the
    settled path cut after the turn that earned the search, not the dialogue that went on without reward."""
    task = toolwoz.tasks[TASK]
    hotel, _ = task.ground_truth_calls()
    episode = Episode(Scenario(domain="toolwoz", task_id=TASK, instruction=task.instruction), ToolWOZEnv(toolwoz, task),
                      AgentFormat.react(domain("toolwoz").react_system("compact")), max_messages=12)
    script = agent_script(toolwoz)
    agent = Scripted(lambda i, p: "SPEAK How can I help? <COMMAND_END>"
                     if "search_restaurant" in script(i, p) else script(i, p), by_position=True)
    user = Scripted(lambda i, p: f"I need a hotel and a restaurant ({len(p)})", by_position=True)
    (tree,) = josh.run_josh([josh.Search(episode, beam_size=4)], agent, user, SamplingConfig(), SamplingConfig())
    assert tree.dialogue.outcome.reward == 0.5 and not any(n.is_golden for n in tree.nodes)
    system = domain("toolwoz").react_system("compact")
    assert harvest.sft_examples([tree], system) == []
    (row,) = harvest.sft_examples([tree], system, min_reward=0.5)
    earned_at = max((n for n in tree.nodes if n.is_successful), key=lambda n: len(n.messages))  # made the search
    assert any("search_hotel" in m.content for m in earned_at.turn)
    assert len(row["messages"]) == len(earned_at.messages) + 1 < len(tree.dialogue.messages) + 1
    assert row["messages"][-1]["content"] == earned_at.messages[-1].content
    assert not any(m["content"].startswith("ERROR") or "ERROR:" in m["content"] for m in row["messages"])
    result = next(i for i, m in enumerate(earned_at.messages) if m.role == "tool")
    broken = list(earned_at.messages)
    broken[result] = broken[result].model_copy(update={"content": "ERROR: INVALID API CALL!"})
    nodes = tuple(n.model_copy(update={"messages": tuple(broken)}) if n is earned_at else n for n in tree.nodes)
    assert harvest.sft_examples([tree.model_copy(update={"nodes": nodes})], system, min_reward=0.5) == []
