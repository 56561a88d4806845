"""The human MultiWOZ conversations behind ToolWOZ, rewritten in the project's agent format.

Each system turn becomes the API calls a tool-using agent would have made before it (read
off the annotated belief state: a search when the constraints change, a booking when a new
entity is booked), the tool results from the real environment, and the human reply as a
SPEAK. The customer's last turn ends with END_CONVERSATION, as the user simulator must.
These dialogues are the embedded model's training corpus, so nothing here reads the test
or validation logs unless asked for that split.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from core.fingerprint import code_fingerprint, stable_hash
from core.cache import reuse
from core.paths import cache_dir, write_atomically
from core.types import Dialogue, Message, Outcome, Scenario, Termination, ToolCall
from envs.toolwoz.data import (
    DOMAINS,
    Split,
    ToolWOZData,
    ToolWOZTask,
    data_version,
    is_empty,
    read_dataset,
    unique_id_key,
)
from envs.toolwoz.env import ToolWOZEnv
from envs.toolwoz.tools import is_rejected
from formats.react import format_call, format_speak
from formats.user_sim import END_MARKER

HUMAN = "human"


def human_dialogues(data: ToolWOZData, split: Split, limit: int | None = None) -> list[Dialogue]:
    """The split's human conversations as agent-format dialogues, scored by the environment."""
    ids = data.splits[split][:limit]
    logs = read_dataset("data.json")
    return [transcript(data, data.tasks[i], logs[i]["log"]) for i in ids]


def transcript(data: ToolWOZData, task: ToolWOZTask, log: list[dict[str, Any]]) -> Dialogue:
    env = ToolWOZEnv(data, task)
    record: list[Message] = []
    previous: dict[str, Any] = {}
    for turn in log:
        text = " ".join(turn["text"].split())
        if not turn["metadata"]:
            record.append(Message(role="user", content=text))
            continue
        for call in calls_between(previous, turn["metadata"], data.api_params):
            record.append(Message(role="assistant", content=format_call(call), tool_calls=(call,)))
            record.append(Message(role="tool", content=env.step(call).text))
        record.append(Message(role="assistant", content=format_speak(text)))
        previous = turn["metadata"]
    last_user = max(i for i, m in enumerate(record) if m.role == "user")
    record[last_user] = Message(role="user", content=f"{record[last_user].content} {END_MARKER}")
    result = env.reward()
    outcome = Outcome(
        reward=result.reward,
        success=result.success,
        termination=Termination.user_ended,
        turns=sum(m.role == "user" or m.content.startswith("SPEAK") for m in record),
        api_calls=len(env.records),
        invalid_calls=sum(is_rejected(r.result) for r in env.records),
    )
    scenario = Scenario(domain="toolwoz", task_id=task.id, instruction=task.instruction)
    return Dialogue(scenario=scenario, messages=tuple(record), outcome=outcome, agent_model=HUMAN, user_model=HUMAN)


def calls_between(before: dict[str, Any], after: dict[str, Any], api_params: dict[str, list[str]]) -> list[ToolCall]:
    """The calls that explain how the belief state moved from `before` to `after`."""
    calls = []
    for domain in DOMAINS:
        if domain not in after:
            continue
        old, new = before.get(domain, {}), after[domain]
        search = _constraints(new.get("semi", {}), api_params[f"search_{domain}"])
        if search and search != _constraints(old.get("semi", {}), api_params[f"search_{domain}"]):
            calls.append(ToolCall(name=f"search_{domain}", arguments=search))
        booked, was_booked = new["book"].get("booked", []), old.get("book", {}).get("booked", [])
        if f"book_{domain}" in api_params and len(booked) > len(was_booked):
            params = _constraints(new["book"], api_params[f"book_{domain}"])
            key = unique_id_key(domain)
            entity = booked[-1].get(key) or search.get(key)
            if entity:
                params[key] = entity
            calls.append(ToolCall(name=f"book_{domain}", arguments=params))
    return calls


def _constraints(slots: dict[str, Any], params: list[str]) -> dict[str, str]:
    return {k: slots[k] for k in params if isinstance(slots.get(k), str) and slots[k] and not is_empty(slots[k])}


def corpus_file(data: ToolWOZData, split: Split = "train", limit: int | None = None) -> Path:
    """`human_dialogues` as cached JSONL, built on first use (keyed on data and code).

    Models trained on it are keyed on this file's content (`corpus_hash`), not on the code
    that wrote it: a refactor that leaves the dialogues unchanged keeps those models.
    """
    key = stable_hash(data_version(), code_fingerprint(__name__))[:12]
    path = cache_dir() / "toolwoz" / f"transcripts-{split}{f'-first{limit}' if limit else ''}-{key}.jsonl"
    if not reuse(path):
        write_atomically(path, "".join(d.model_dump_json() + "\n" for d in human_dialogues(data, split, limit)))
    return path


def corpus_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

