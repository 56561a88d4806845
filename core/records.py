"""Lossless round trips of dialogues to Hugging Face `datasets` and JSONL.

Arrow needs one schema per column, so free-form dicts (tool arguments, persona attributes)
are stored as JSON strings; everything else keeps its structure, so a dataset opened in any
tool shows readable messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import datasets
from pydantic import ValidationError

from core.errors import BadFileError, first_error
from core.paths import write_atomically
from core.types import Dialogue, Message, Outcome, Persona, Scenario, ToolCall

_TOOL_CALL = {"id": datasets.Value("string"), "name": datasets.Value("string"), "arguments": datasets.Value("string")}
_MESSAGE = {
    "role": datasets.Value("string"),
    "content": datasets.Value("string"),
    "tool_calls": datasets.List(_TOOL_CALL),
    "tool_call_id": datasets.Value("string"),
}
DIALOGUE_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "domain": datasets.Value("string"),
        "task_id": datasets.Value("string"),
        "instruction": datasets.Value("string"),
        "persona_attributes": datasets.Value("string"),
        "persona_text": datasets.Value("string"),
        "messages": datasets.List(_MESSAGE),
        "reward": datasets.Value("float64"),
        "success": datasets.Value("bool"),
        "termination": datasets.Value("string"),
        "turns": datasets.Value("int64"),
        "api_calls": datasets.Value("int64"),
        "invalid_calls": datasets.Value("int64"),
        "prompt_tokens": datasets.Value("int64"),
        "completion_tokens": datasets.Value("int64"),
        "workflow_steps": datasets.Value("int64"),
        "workflow_depth": datasets.Value("float64"),
        "reward_basis": datasets.Value("string"),  # JSON: component -> 0/1
        "judged": datasets.Value("bool"),
        "agent_model": datasets.Value("string"),
        "user_model": datasets.Value("string"),
    }
)


# Training datasets, in the conversational layout trl's trainers read (role + content messages);
# `scenario_id` names the dialogue a row came from, so curation filters them with their dialogue.
_CHAT = datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")})
_IDS = {"scenario_id": datasets.Value("string"), "task_id": datasets.Value("string")}
TRAINING_FEATURES = {
    "sft": datasets.Features({**_IDS, "reward": datasets.Value("float64"), "messages": _CHAT}),
    "dpo": datasets.Features({**_IDS, "prompt": _CHAT, "chosen": _CHAT, "rejected": _CHAT}),
    "kto": datasets.Features({**_IDS, "prompt": _CHAT, "completion": _CHAT, "label": datasets.Value("bool")}),
    "trees": datasets.Features({**_IDS, "node": datasets.Value("int64"), "messages": _CHAT,
                                "turn_start": datasets.Value("int64"), "is_successful": datasets.Value("bool"),
                                "is_golden": datasets.Value("bool")}),
}


def training_dataset(kind: str, rows: list[dict[str, Any]]) -> datasets.Dataset:
    """Rows as a dataset with its declared columns, so an empty harvest still loads with the right schema."""
    features = TRAINING_FEATURES[kind]
    return datasets.Dataset.from_dict({k: [row[k] for row in rows] for k in features}, features=features)


def message_to_row(m: Message) -> dict[str, Any]:
    return {
        "role": m.role,
        "content": m.content,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": json.dumps(c.arguments)} for c in m.tool_calls],
        "tool_call_id": m.tool_call_id,
    }


def message_from_row(row: dict[str, Any]) -> Message:
    calls = tuple(ToolCall(id=c["id"], name=c["name"], arguments=json.loads(c["arguments"])) for c in row["tool_calls"])
    return Message(role=row["role"], content=row["content"], tool_calls=calls, tool_call_id=row["tool_call_id"])


def dialogue_to_row(d: Dialogue) -> dict[str, Any]:
    persona = d.scenario.persona
    return {
        "id": d.id,
        "domain": d.scenario.domain,
        "task_id": d.scenario.task_id,
        "instruction": d.scenario.instruction,
        "persona_attributes": json.dumps(persona.attributes) if persona else None,
        "persona_text": persona.text if persona else None,
        "messages": [message_to_row(m) for m in d.messages],
        **d.outcome.model_dump(mode="json"),
        "reward_basis": json.dumps(d.outcome.reward_basis),
        "agent_model": d.agent_model,
        "user_model": d.user_model,
    }


def dialogue_from_row(row: dict[str, Any]) -> Dialogue:
    persona = None
    if row["persona_attributes"] is not None:
        persona = Persona(attributes=json.loads(row["persona_attributes"]), text=row["persona_text"] or "")
    scenario = Scenario(domain=row["domain"], task_id=row["task_id"], instruction=row["instruction"], persona=persona)
    fields = {k: row[k] for k in Outcome.model_fields if k in row}  # older datasets lack newer fields
    outcome = Outcome(**{**fields, **({"reward_basis": json.loads(row["reward_basis"])} if "reward_basis" in row else {})})
    return Dialogue(
        scenario=scenario,
        messages=tuple(message_from_row(m) for m in row["messages"]),
        outcome=outcome,
        agent_model=row["agent_model"],
        user_model=row["user_model"],
    )


def dialogues_to_dataset(dialogues: Iterable[Dialogue]) -> datasets.Dataset:
    rows = [dialogue_to_row(d) for d in dialogues]  # by column: an empty list still gets the schema
    return datasets.Dataset.from_dict({k: [r[k] for r in rows] for k in DIALOGUE_FEATURES}, features=DIALOGUE_FEATURES)


def dialogues_from_dataset(ds: datasets.Dataset) -> list[Dialogue]:
    return [dialogue_from_row(row) for row in ds]


def write_jsonl(dialogues: Iterable[Dialogue], path: Path) -> Path:
    return write_atomically(path, (d.model_dump_json() + "\n" for d in dialogues))


def read_jsonl(path: Path) -> list[Dialogue]:
    """Every dialogue of a JSONL file; a broken or truncated line is an error naming the file, the line and the field."""
    dialogues = []
    with path.open("rb") as f:  # bytes: a line that is not UTF-8 fails as a broken line, not a UnicodeDecodeError
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                dialogues.append(Dialogue.model_validate_json(line.strip()))
            except ValidationError as e:
                raise BadFileError(f"{path}, line {number}: not a dialogue ({first_error(e)})") from None
    return dialogues


def load_dataset(path: Path | str) -> datasets.Dataset:
    """A dataset folder saved by a stage; a missing, corrupt or truncated one is an error naming the folder."""
    try:
        return datasets.load_from_disk(str(path))
    except (OSError, ValueError) as e:  # no such folder, broken state.json, truncated Arrow file (ArrowInvalid)
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BadFileError(f"{path}: not a readable dataset folder ({reason})") from None
