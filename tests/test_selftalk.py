"""Workflow domains and Self-talk on scripted models: the graph checks, the manager's edges, depth by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.config import SamplingConfig
from core.errors import ConfigError
from core.types import Persona, Scenario, Termination
from envs.workflows import load_workflow
from envs.workflows.progress import completed_steps, depth, rouge_l
from envs.workflows.workflow import WORKFLOWS_DIR
from quality.dialogue_table import dialogue_table
from quality.metrics import text_diversity
from roleplay import harvest, selftalk

from conftest import Scripted

SAMPLING = {"agent": SamplingConfig(), "client": SamplingConfig(), "manager": SamplingConfig()}

SMALL = """
name: small
description: A client wants a refund.
agent: {character: You are Sam from the shop.}
intentions: [My kettle broke.]
steps:
  1:
    say: Hello, how can I help you today?
    answers:
      - {answer: My order arrived broken., next: 2}
      - {answer: I want to know my delivery date., next: 4}
  2:
    say: What is your order number?
    answers:
      - {answer: It is order 123., next: 3}
  3:
    say: Your refund is on its way. Is there anything else?
    answers:
      - {answer: No that is all, next: end}
  4:
    say: Delivery takes three days.
"""


def obedient_agent(prompt) -> str:
    """Says exactly what the manager told it to; without an instruction, asks the client to repeat."""
    told = re.search(r'Now, you must say: "(.*)"', prompt[0].content)
    return told.group(1) if told else "Sorry, could you repeat that?"


def client_saying(*lines):
    replies = iter(lines)
    return Scripted(lambda prompt: next(replies), spec="client")


def option_picker(prompt) -> str:
    """A manager model that picks the option equal to the client's answer, else "none of the above"."""
    text = prompt[-1].content
    if "start, middle or end" in text:
        return "middle"
    answer = re.search(r'The client answered: "(.*)"', text).group(1)
    options = re.findall(r"^(\d+)\. (.*)$", text, re.MULTILINE)
    return next((n for n, o in options if o == answer), options[-1][0])


@pytest.fixture
def small(tmp_path) -> object:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return load_workflow(str(path))


def talk(workflow, client, manager=None, **rules):
    scenario = Scenario(domain="workflow", task_id="small/0", instruction=workflow.intentions[0],
                        persona=Persona(attributes={"a": "1"}, text="You are terse."))
    manager = manager or selftalk.ModelManager(Scripted(option_picker, "manager"))
    return selftalk.run_selftalk([(scenario, workflow)], Scripted(obedient_agent, "agent"),
                                 selftalk.ModelClient(client), manager, SAMPLING, selftalk.Rules(**rules))[0]


def agent_lines(d):
    return [m.content for m in d.messages if m.role == "assistant"]


def test_shipped_workflows_are_sound():
    names = sorted(p.stem for p in WORKFLOWS_DIR.glob("*.yaml"))
    assert names == ["card_block", "doctor_appointment", "refund_desk"]
    for name in names:
        workflow = load_workflow(name)
        assert workflow.problems() == [] and workflow.longest_path >= 5 and len(workflow.intentions) >= 3


def test_manager_follows_the_matching_edges_to_the_end(small):
    d = talk(small, client_saying("My order arrived broken.", "It is order 123.", "No that is all"))
    assert agent_lines(d) == [small.steps[s].say for s in (1, 2, 3)]
    assert d.outcome.termination == Termination.user_ended and d.outcome.success
    assert (d.outcome.workflow_steps, d.outcome.workflow_depth) == (3, 1.0)  # longest path: 1 -> 2 -> 3


def test_none_of_the_above_leaves_the_agent_free_and_the_step_where_it_was(small):
    d = talk(small, client_saying("Hmm, what?", "I want to know my delivery date.", "ok"))
    assert agent_lines(d) == [small.steps[1].say, "Sorry, could you repeat that?", small.steps[4].say]
    assert d.outcome.termination == Termination.conversation_end and d.outcome.success  # step 4 closes the workflow
    assert (d.outcome.workflow_steps, d.outcome.workflow_depth) == (2, pytest.approx(2 / 3))


def test_the_manager_prompt_lists_the_answers_and_none_of_the_above(small):
    prompt = selftalk.manager_prompt(small, 1, "Hello", "My order arrived broken.")[0].content
    assert "1. My order arrived broken.\n2. I want to know my delivery date.\n3. None of the above" in prompt
    assert [selftalk.parse_choice(t, 2) for t in ("2", "Option 1.", "3", "none", "7")] == [1, 0, None, None, None]


def test_stops_turn_cap_end_phrase_and_phase_check(small):
    looping = talk(small, client_saying(*["Hmm, what?"] * 5), max_turns=3)
    assert looping.outcome.termination == Termination.turn_cap and len(agent_lines(looping)) == 3
    assert not looping.outcome.success
    bye = talk(small, client_saying("Goodbye then."))
    assert bye.outcome.termination == Termination.user_ended and not bye.outcome.success
    ending = selftalk.ModelManager(Scripted(lambda p: "end" if "start, middle" in p[-1].content else option_picker(p)))
    checked = talk(small, client_saying("My order arrived broken."), manager=ending)
    assert checked.outcome.termination == Termination.conversation_end and len(agent_lines(checked)) == 1


def test_the_rouge_manager_matches_paraphrases_offline(small):
    d = talk(small, client_saying("my order arrived completely broken", "order 123", "no, that is all"),
             manager=selftalk.RougeManager(0.33))
    assert agent_lines(d) == [small.steps[s].say for s in (1, 2, 3)]


def test_rouge_l_and_depth_match_hand_computed_values(small):
    # LCS of "tell me your order number please" and "what is your order number" is 3 words: P 3/6, R 3/5
    assert rouge_l("Tell me your order number please", "What is your order number?") == pytest.approx(6 / 11)
    said = ["Hello, how can I help?", "Tell me your order number please", "I see, thanks", "Hello, how can I help?"]
    assert completed_steps(small, said) == [1, 2]
    assert depth(small, said) == (2, pytest.approx(2 / 3))
    assert depth(small, said, threshold=0.9) == (0, 0.0)


def test_workflow_metrics_feed_the_quality_table(small):
    d = talk(small, client_saying("My order arrived broken.", "It is order 123.", "No that is all"))
    row = dialogue_table([d]).iloc[0]
    assert (row["workflow_steps"], row["workflow_depth"], row["ended_properly"]) == (3, 1.0, True)
    assert row["character_consistency"] == 1.0 and row["mean_utterance_words"] > 3  # plain text counts as speech


def test_the_scripted_client_answers_the_step_it_heard(small):
    client = selftalk.ScriptedClient(off_script=0.0)
    d = selftalk.run_selftalk([(Scenario(domain="workflow", task_id="small/0", instruction="x"), small)],
                              Scripted(obedient_agent), client, selftalk.RougeManager(0.33), SAMPLING)[0]
    assert agent_lines(d)[0] == small.steps[1].say and d.outcome.success and d.outcome.workflow_steps >= 2


def test_diversity_of_identical_texts_is_zero():
    same = text_diversity(["a b c", "a b c"])
    assert same == {"unique_words": 3, "unique_ngrams": 6, "rouge_l_diversity": 0.0}
    assert text_diversity(["a b", "c d"])["rouge_l_diversity"] == 1.0


@pytest.mark.parametrize("edit,message", [
    (lambda s: s.replace("next: 3}", "next: 9}"), "step 2, answer 1: next step 9 does not exist"),
    (lambda s: s.replace("next: 4}", "next: 2}"), "step 4 cannot be reached from step 1"),
    (lambda s: s.replace("{answer: No that is all, next: end}", "{answer: Nope, next: 2}"), r"steps \[2, 3\] loop without an exit"),
    (lambda s: s.replace("next: end", "next: finish"), "steps.3.answers.0.next: must be a step number or 'end'"),
    (lambda s: s.replace("    say: What is your", "    sya: What is your"), "steps.2.sya: unknown key"),
    (lambda s: s.replace("intentions: [My kettle broke.]", "intentions: [My kettle"), "malformed YAML .* line"),
])
def test_a_malformed_workflow_is_one_clear_error(tmp_path, edit, message):
    path = tmp_path / "bad.yaml"
    path.write_text(edit(SMALL))
    with pytest.raises(ConfigError, match=message) as e:
        load_workflow(str(path))
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_an_unknown_workflow_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="shipped workflows: card_block, doctor_appointment, refund_desk"):
        load_workflow("no_such_desk")
    assert not Path("no_such_desk").exists()


def test_the_imagination_engine_juxtaposes_a_revised_success_and_failure():
    from roleplay import imagine

    def llm(prompt):
        text = prompt[-1].content
        if "For each person" in text:
            return "1. A hurried parent whose kettle broke."
        if "Check it against" in text:
            return "CRITIQUE: the agent should ask for the order number."
        won = "fully succeeds" in text
        if "A reviewer said" in text:
            assert "CRITIQUE: the agent should ask for the order number." in text
            return "User: My kettle broke.\nAgent: " + ("What is your order number?" if won else "Sorry, no refunds.")
        return "User: Hello.\nAgent: draft reply"

    people = imagine.task_personas([Persona(attributes={"a": "1"}, text="You are terse.")],
                                   llm([imagine.persona_prompt("refunds", [])][0]))
    assert people[0].text == "You are terse. A hurried parent whose kettle broke."
    model = Scripted(llm)
    items = imagine.imagine(model, "refunds", ["asks for the order"], people, SamplingConfig())
    assert [i.target for i in items] == ["success", "failure"]
    assert items[0].draft[1].content == "draft reply" and items[0].messages[1].content == "What is your order number?"
    failure_prompt = next(p[-1].content for p in model.prompts if "the agent fails" in p[-1].content)
    assert "You are terse. A hurried parent" in failure_prompt and 'opens with exactly: "My kettle broke."' in failure_prompt
    won, lost = (imagine.as_dialogue(i, "t", "scripted") for i in items)
    pair = harvest.diverging_pair(won, [], won.messages, lost.messages)
    assert [m.content for m in pair.prompt] == ["My kettle broke."]
    assert (pair.chosen.content, pair.rejected.content) == ("What is your order number?", "Sorry, no refunds.")
    assert imagine.parse_dialogue("no speakers here") == ()
