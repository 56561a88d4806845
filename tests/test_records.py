"""Dialogues survive a round trip through a saved HF dataset and through JSONL, field for field."""

import re

import datasets
import pytest

from core.errors import BadFileError
from core.records import dialogues_from_dataset, dialogues_to_dataset, load_dataset, read_jsonl, write_jsonl
from core.types import Dialogue, Message, Outcome, Persona, Scenario, Termination, ToolCall


def _dialogues():
    persona = Persona(attributes={"age": "34", "patience": "low"}, text="A 34-year-old in a hurry.")
    call = ToolCall(name="search_train", arguments={"day": "monday", "people": 3, "flexible": True}, id="c1")
    messages = (
        Message(role="system", content="sys"),
        Message(role="user", content="train on monday, 3 of us"),
        Message(role="assistant", content='PLAN x APICALL {...}', tool_calls=(call,)),
        Message(role="tool", content="[]", tool_call_id="c1"),
        Message(role="assistant", content="SPEAK none, sorry"),
    )
    outcome = Outcome(reward=0.5, success=False, termination=Termination.user_ended, turns=3, api_calls=1,
                      invalid_calls=0, prompt_tokens=120, completion_tokens=40)
    return [
        Dialogue(scenario=Scenario(domain="toolwoz", task_id="a.json", instruction="go", persona=persona),
                 messages=messages, outcome=outcome, agent_model="embedded", user_model="openai:x"),
        Dialogue(scenario=Scenario(domain="toolwoz", task_id="b.json", instruction="go"),
                 messages=messages[:2], outcome=Outcome()),
    ]


def test_dataset_round_trip_is_lossless(tmp_path):
    original = _dialogues()
    dialogues_to_dataset(original).save_to_disk(str(tmp_path / "ds"))
    loaded = datasets.load_from_disk(str(tmp_path / "ds"))
    assert loaded.num_rows == 2 and loaded[0]["messages"][2]["tool_calls"][0]["name"] == "search_train"
    assert dialogues_from_dataset(loaded) == original


def test_jsonl_round_trip_is_lossless(tmp_path):
    original = _dialogues()
    assert read_jsonl(write_jsonl(original, tmp_path / "d.jsonl")) == original


def test_a_broken_line_names_the_file_the_line_and_the_field(tmp_path):
    path = write_jsonl(_dialogues(), tmp_path / "d.jsonl")
    good, second = path.read_text().splitlines()
    path.write_text(f"{good}\n{second[:50]}\n")  # truncated, as by a killed writer
    with pytest.raises(BadFileError, match=r"d\.jsonl, line 2: not a dialogue \(Invalid JSON"):
        read_jsonl(path)
    wrong_type = second.replace('"reward":0.0', '"reward":"high"')
    assert wrong_type != second
    path.write_text(f"{good}\n{wrong_type}\n")
    with pytest.raises(BadFileError, match=r"line 2: not a dialogue \(outcome\.reward: "):
        read_jsonl(path)


def test_a_truncated_dataset_folder_is_one_error_naming_it(tmp_path):
    dialogues_to_dataset(_dialogues()).save_to_disk(str(tmp_path / "ds"))
    arrow = next((tmp_path / "ds").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:200])
    with pytest.raises(BadFileError, match=re.escape(f"{tmp_path / 'ds'}: not a readable dataset folder")):
        load_dataset(tmp_path / "ds")
    with pytest.raises(BadFileError, match="not a readable dataset folder"):
        load_dataset(tmp_path / "missing")
