"""The goal-agenda user simulator on hand-made goals and real tasks, against scripted and random agents."""

import random
import re

import pytest

from core.config import SamplingConfig
from core.types import Message, Persona, Scenario
from envs.registry import domain
from envs.toolwoz.env import ToolWOZEnv, oracle_reward
from envs.toolwoz.agenda import Agenda, Catalog, Style, conveyed, goal_values
from envs.toolwoz.data import DomainGoal, ToolWOZTask
from roleplay.scripted_agent import QUESTIONS, play_scripted
from roleplay.rollout import AgentFormat, Episode
from formats.user_sim import END_MARKER
from roleplay.users import AgendaUser

GOAL = ToolWOZTask(
    id="handmade",
    goal_lines=["You want a cheap indian restaurant in the north, then a train."],
    goals={
        "restaurant": DomainGoal(search={"food": "indian", "pricerange": "cheap", "area": "north", "name": ""},
                                 book={"time": "12:15", "day": "monday", "people": "3", "name": "royal spice"},
                                 booked={"name": "royal spice", "reference": "X1"}),
        "train": DomainGoal(search={"departure": "cambridge", "destination": "ely", "day": "friday", "leaveAt": "",
                                    "arriveBy": "10:00"}),
    },
)
PASSIVE = "i see. please go on."


@pytest.fixture(scope="module")
def catalog(toolwoz):
    return Catalog(toolwoz)


def agenda(catalog, style=Style(per_turn=1), seed="t"):
    return Agenda(catalog, GOAL, style, seed)


def test_it_informs_every_constraint_a_few_at_a_time(catalog):
    user = agenda(catalog)
    turns = [user.reply(None)] + [user.reply(PASSIVE) for _ in range(3)]
    said = " ".join(t.text for t in turns)
    assert all(conveyed(s, v, said) for d, s, v in goal_values(GOAL) if d == "restaurant" and s in GOAL.goals[d].search)
    assert 1 <= len(turns[0].informed) <= 2 and not any(t.ended for t in turns)


def test_it_answers_a_direct_question_from_its_goal(catalog):
    user = agenda(catalog)
    user.reply(None)
    answer = user.reply("what area would you like?")
    assert ("restaurant", "area", "north") in answer.informed and "north" in answer.text.lower()


def test_a_question_the_goal_does_not_answer_gets_no_preference(catalog):
    user = agenda(catalog)
    user.reply(None)
    reply = user.reply("do you have a particular restaurant in mind?").text.lower()
    assert any(p.rstrip(".") in reply for p in ("i don't have a preference", "it doesn't matter", "any is fine",
                                                  "i don't mind"))


def test_it_rejects_an_offer_that_breaks_the_goal_and_accepts_one_that_meets_it(catalog, toolwoz):
    wrong = next(r for r in toolwoz.databases["restaurant"] if r["food"] == "italian" and r["area"] == "north")
    user = agenda(catalog)
    user.reply(None)
    rejected = user.reply(f"how about {wrong['name']}? it is a nice place.")
    assert ("restaurant", "food", "indian") in rejected.informed and "indian" in rejected.text
    accepted = user.reply("royal spice is a cheap indian restaurant in the north. shall i book it?")
    assert {s for _, s, _ in accepted.informed} == {"time", "day", "people"}
    assert all(v in accepted.text for v in ("12:15", "monday", "3"))


def test_it_ends_only_when_every_goal_is_served(catalog):
    user = agenda(catalog, Style(per_turn=3))
    user.reply(None)
    user.reply("what area would you like?")
    user.reply("royal spice is a great choice. would you like me to book it?")
    assert not user.reply("booking was successful. the reference number is X1.").ended  # the train is still to come
    user.reply("where are you going to?")
    train = next(r for r in catalog.rows["train"].values()
                 if r["departure"] == "cambridge" and r["destination"] == "ely" and r["day"] == "friday"
                 and r["arriveBy"] < "10:00")
    final = user.reply(f"{train['trainID']} arrives by {train['arriveBy']}.")
    assert final.ended and final.text.endswith(END_MARKER) and all(d.done for d in user.domains)


def _random_agent_utterances(catalog, rng, n):
    names = [r["name"] for d in ("restaurant", "hotel", "attraction") for r in catalog.rows[d].values()]
    trains = [r["trainID"] for r in catalog.rows["train"].values()]
    pieces = [*QUESTIONS.values(), "booking was successful. the reference number is ab12cd.",
              "i'm sorry, there is no match.", "would you like me to book it?", "is there anything else?",
              "sorry, the booking failed.", "ok.", "", "PLAN hmm", "how many nights? what day? how many people?"]
    return [" ".join(rng.choice([rng.choice(pieces), f"{rng.choice(names)} is available.",
                                 f"{rng.choice(trains)} leaves soon."]) for _ in range(rng.randint(1, 3)))
            for _ in range(n)]


def test_under_random_agent_utterances_it_never_contradicts_its_goal(catalog, toolwoz):
    """Fuzz: 200 random agent turns over a few conversations; every value said is the goal's, END only when served."""
    rng = random.Random(0)
    wanted = {(d, s): v for d, s, v in goal_values(GOAL)}
    rivals = {"area": ["south", "east", "west", "centre"], "pricerange": ["expensive", "moderate"],
              "day": ["tuesday", "wednesday", "thursday", "saturday", "sunday"], "food": ["italian", "chinese"]}
    said_turns = 0
    for k in range(20):
        user = agenda(catalog, Style(per_turn=rng.choice([1, 2, 3]), polite=k % 2 == 0, chatty=k % 3 == 0), seed=str(k))
        turn = user.reply(None)
        for text in _random_agent_utterances(catalog, rng, 10):
            if turn.ended:
                break
            turn = user.reply(text)
            said_turns += 1
            for domain, slot, value in turn.informed:
                assert wanted[(domain, slot)] == value and conveyed(slot, value, turn.text)
            for slot, others in rivals.items():
                assert not any(re.search(rf"\b{o}\b", turn.text.lower()) for o in others), (slot, turn.text)
            assert turn.ended == all(d.done for d in user.domains) == (END_MARKER in turn.text)
    assert said_turns >= 150


def _conversation(user, task, seed, agent_lines):
    scenario = Scenario(domain="toolwoz", task_id=task.id, instruction=task.instruction,
                        persona=Persona(attributes={"verbosity": "talkative"}))
    visible, texts = [], []
    for line in [None, *agent_lines]:
        if line is not None:
            visible.append(Message(role="assistant", content=line))
        (gen,) = user.respond([(scenario, visible)], SamplingConfig(seed=seed))
        visible.append(Message(role="user", content=gen.text))
        texts.append(gen.text)
    return texts


def test_same_seed_same_dialogue_and_the_seed_changes_the_phrasing(toolwoz):
    user = AgendaUser()
    task = toolwoz.split("val")[0]
    lines = ["what area would you like?", "how many people?", "is there anything else?"]
    first = _conversation(user, task, 0, lines)
    assert first == _conversation(user, task, 0, lines)
    assert any(_conversation(user, task, s, lines) != first for s in (1, 2, 3))


def test_the_scripted_perfect_agent_succeeds_against_it_on_real_tasks(toolwoz):
    tasks = [t for t in toolwoz.split("val") if oracle_reward(toolwoz, t).success][:6]
    system = AgentFormat.react(domain("toolwoz").react_system("compact"))
    episodes = [Episode(Scenario(domain="toolwoz", task_id=t.id, instruction=t.instruction), ToolWOZEnv(toolwoz, t),
                        system) for t in tasks]
    play_scripted(episodes, toolwoz.tasks, AgendaUser(), SamplingConfig())
    for e in episodes:
        said = " ".join(m.content for m in e.visible if m.role == "user")
        assert e.to_dialogue().outcome.success and e.termination.value == "user_ended"
        assert all(conveyed(s, v, said) for _, s, v in goal_values(toolwoz.tasks[e.scenario.task_id]))
