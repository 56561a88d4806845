"""Value substitution in the bootstrap corpus: a swapped value is swapped everywhere it occurs, calls stay valid."""

import json
import random

import pytest

from core.types import Dialogue, Message, Outcome, Scenario, ToolCall
from envs.toolwoz.substitution import substitute, substitute_corpus, value_pools
from envs.toolwoz.transcripts import human_dialogues
from formats.react import format_call, format_speak, parse_action


def _call(name: str, **arguments) -> Message:
    call = ToolCall(name=name, arguments=arguments)
    return Message(role="assistant", content=format_call(call), tool_calls=(call,))


TRAIN = Dialogue(
    scenario=Scenario(domain="toolwoz", task_id="t", instruction="Find a train from ely to cambridge on saturday."),
    messages=(
        Message(role="user", content="I need a train from Ely to Cambridge on Saturday, leaving after 10:15. "
                                     "I must be there by half past seven."),
        _call("search_train", departure="ely", destination="cambridge", day="saturday", leaveAt="10:15",
              arriveBy="19:30"),
        Message(role="tool", content=json.dumps([{"trainID": "TR1234", "departure": "ely", "destination": "cambridge",
                                                  "day": "saturday", "leaveAt": "10:21", "arriveBy": "10:38"}])),
        Message(role="assistant", content=format_speak("TR1234 leaves Ely at 10:21 on Saturday. Shall I book it?")),
        Message(role="user", content="Yes, for 3 people please."),
        _call("book_train", trainID="TR1234", people="3"),
        Message(role="tool", content=json.dumps({"success": True, "return": {"trainID": "TR1234", "reference": "AB12"}})),
        Message(role="assistant", content=format_speak("Booked TR1234 for 3 people, reference AB12.")),
    ),
    outcome=Outcome(reward=1.0, success=True),
    agent_model="human",
    user_model="human",
)


@pytest.fixture(scope="module")
def pools(toolwoz):
    return value_pools(toolwoz, "wide")


@pytest.fixture(scope="module")
def human(toolwoz):
    return human_dialogues(toolwoz, "train", limit=30)


def test_a_swapped_value_is_swapped_in_every_message(pools):
    new = substitute(TRAIN, pools, random.Random(0))
    search, result, booking = new.messages[1].tool_calls[0].arguments, json.loads(new.messages[2].content)[0], \
        new.messages[5].tool_calls[0].arguments
    said, reply = new.messages[0].content.lower(), new.messages[3].content.lower()
    for field in ("departure", "destination", "day"):
        assert search[field] != TRAIN.messages[1].tool_calls[0].arguments[field]
        assert search[field] in said and result[field] == search[field], field
    assert search["departure"] in reply and result["trainID"].lower() in reply
    assert booking["trainID"] == result["trainID"] != "TR1234" and booking["trainID"].lower() in new.messages[7].content.lower()
    assert booking["people"] in new.messages[4].content and booking["people"] in new.messages[7].content
    assert search["day"] in new.scenario.instruction and "ely" not in new.scenario.instruction


def test_times_move_together_and_unsaid_values_stay(pools):
    new = substitute(TRAIN, pools, random.Random(1))
    search, row = new.messages[1].tool_calls[0].arguments, json.loads(new.messages[2].content)[0]
    assert search["leaveAt"] in new.messages[0].content and search["leaveAt"] < row["leaveAt"] < row["arriveBy"]
    assert search["arriveBy"] == "19:30"  # said as "half past seven": nobody showed "19:30", so no new value for it


def test_calls_stay_valid_json_on_real_transcripts(human, pools):
    swapped = substitute_corpus(human, pools, share=1.0, seed=0)
    changed = 0
    for before, after in zip(human, swapped):
        shown = " ".join(m.content for m in after.messages if not m.tool_calls).lower()
        for old, new in zip(before.messages, after.messages):
            if new.tool_calls:
                assert parse_action(new.content).call == new.tool_calls[0]
                for key, value in new.tool_calls[0].arguments.items():
                    if value != old.tool_calls[0].arguments[key]:
                        changed += 1
                        assert value.lower() in shown, (key, value)  # a new value in a call is one the talk showed
            elif new.role == "tool" and old.content.startswith(("[", "{")):
                json.loads(new.content)
    assert changed > 50


def test_share_and_pool(toolwoz, human, pools):
    assert substitute_corpus(human, pools, share=0.0, seed=0) == human
    half = substitute_corpus(human, pools, share=0.5, seed=0)
    assert 5 < sum(a != b for a, b in zip(human, half)) < 25
    db = value_pools(toolwoz, "db")
    names = {r["name"].lower().replace("'", "") for r in toolwoz.databases["restaurant"]}
    assert set(db["restaurant name"]) == names < set(pools["restaurant name"])
    assert set(db["station"]) < set(pools["station"]) and "oxford" not in db["station"]
