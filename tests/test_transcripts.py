"""The embedded model's corpus: human ToolWOZ dialogues rewritten with tool calls where the belief state moved."""

import json

import pytest

from envs.toolwoz.transcripts import calls_between, human_dialogues
from formats.react import parse_action
from formats.user_sim import END_MARKER


@pytest.fixture(scope="module")
def transcripts(toolwoz):
    return human_dialogues(toolwoz, "train", limit=12)


def test_first_training_dialogue_gets_the_calls_a_tool_agent_would_make(transcripts):
    d = transcripts[0]
    calls = [(i, c) for i, m in enumerate(d.messages) for c in m.tool_calls]
    # hand-read from the MultiWOZ log: search after the first user turn, refined search, then the booking
    assert calls[0][1].name == "search_restaurant" and calls[0][1].arguments == {"food": "indian", "pricerange": "expensive"}
    assert calls[0][0] == 1 and d.messages[0].role == "user"
    assert calls[1][1].arguments == {"food": "indian", "pricerange": "expensive", "area": "centre"}
    booking = calls[2][1]
    assert booking.name == "book_restaurant"
    assert booking.arguments == {"time": "19:30", "day": "saturday", "people": "6", "name": "saffron brasserie"}
    assert json.loads(d.messages[calls[2][0] + 1].content)["success"] is True


def test_every_call_is_followed_by_its_result_and_turns_end_with_speech(transcripts):
    for d in transcripts:
        for i, m in enumerate(d.messages):
            if m.tool_calls:
                assert d.messages[i + 1].role == "tool" and not d.messages[i + 1].content.startswith("ERROR")
                assert parse_action(m.content).call == m.tool_calls[0]
            if m.role == "user" and i > 0:
                assert d.messages[i - 1].role == "assistant" and parse_action(d.messages[i - 1].content).speak
        users = [m for m in d.messages if m.role == "user"]
        assert users[-1].content.endswith(END_MARKER) and not any(END_MARKER in m.content for m in users[:-1])


def test_transcripts_come_from_the_requested_split_only(toolwoz, transcripts):
    ids = {d.scenario.task_id for d in transcripts}
    assert ids <= set(toolwoz.splits["train"])
    assert not ids & (set(toolwoz.splits["val"]) | set(toolwoz.splits["full_test"]))


def test_calls_follow_belief_state_changes():
    params = {"search_hotel": ["name", "area", "parking"], "book_hotel": ["stay", "day", "people", "name"]}
    empty = {"hotel": {"semi": {"area": "not mentioned", "parking": ""}, "book": {"booked": []}}}
    asked = {"hotel": {"semi": {"area": "north", "parking": "dontcare"}, "book": {"booked": []}}}
    booked = {"hotel": {"semi": {"area": "north"}, "book": {"booked": [{"name": "acorn", "reference": "X"}],
                                                             "stay": "2", "day": "monday", "people": "3"}}}
    assert calls_between({}, empty, params) == []
    (search,) = calls_between(empty, asked, params)
    assert search.name == "search_hotel" and search.arguments == {"area": "north"}
    assert calls_between(asked, asked, params) == []
    (book,) = calls_between(asked, booked, params)
    assert book.name == "book_hotel" and book.arguments == {"stay": "2", "day": "monday", "people": "3", "name": "acorn"}
