"""The agent's ReAct format: `PLAN <thought>` then one action, `APICALL {json}` or `SPEAK <text>`.

This module owns the format end to end: the system prompt that teaches it, the parser that
reads a generation, and the view of a dialogue the agent is prompted with. Anything that
trains or scores agent turns goes through here, so the format cannot drift between stages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from core.types import Message, ToolCall

END = "<COMMAND_END>"
APIRETURN = "APIRETURN"
COMMANDS = ("PLAN", "APICALL", "SPEAK")
MARKERS = (*COMMANDS, END, APIRETURN)  # the format's own words: a model must write them exactly
_COMMAND = re.compile(rf"\b({'|'.join(COMMANDS)})\b")

PromptStyle = Literal["full", "compact"]

_COMMANDS_PROMPT = """

# Commands
Every reply is one PLAN followed by exactly one action, each ended by {end}:
- PLAN <your private reasoning about what to do next> {end}
- APICALL {{"name": "<api name>", "parameters": {{...}}}} {end}  calls an API; its result comes back as an {ret} message and you continue.
- SPEAK <message to the customer> {end}  ends your turn; the customer sees only what you SPEAK.
"""


def system_prompt(instructions: str, tool_schemas: list[dict[str, Any]], style: PromptStyle, guidance: str = "") -> str:
    """The domain's instructions, then the format. `full`: the commands, the domain's `guidance` (rules, an
    example) and JSON schemas, for API models; `compact`: signatures only, for small models with a short context."""
    if style == "compact":
        signatures = "\n".join(_signature(t) for t in tool_schemas)
        return f"{instructions} Reply PLAN then APICALL {{json}} or SPEAK text.\nAPIs:\n{signatures}"
    commands = _COMMANDS_PROMPT.format(end=END, ret=APIRETURN)
    return f"{instructions}{commands}{guidance}\n# APIs\n{json.dumps(tool_schemas, indent=1)}"


def format_call(call: ToolCall) -> str:
    return f"APICALL {json.dumps({'name': call.name, 'parameters': call.arguments})} {END}"


def format_speak(text: str) -> str:
    return f"SPEAK {text} {END}"


def _signature(schema: dict[str, Any]) -> str:
    fn = schema["function"]
    return f"{fn['name']}({', '.join(fn['parameters']['properties'])})"


@dataclass(frozen=True)
class AgentAction:
    """What one agent generation asks for. Exactly one of `call`, `speak`, `error` is set."""

    text: str  # the generation, cut after its first action
    call: ToolCall | None = None
    speak: str | None = None
    error: str | None = None
    attempted_call: bool = False  # an APICALL was written, well-formed or not


def parse_action(output: str) -> AgentAction:
    """Read the first action of a generation; anything after it is dropped (one action per step)."""
    for match in _COMMAND.finditer(output):
        command = match.group(1)
        if command == "PLAN":
            continue
        body_start = match.end()
        following = _COMMAND.search(output, body_start)
        body_end = following.start() if following else len(output)
        if command == "SPEAK":
            speech = output[body_start:body_end].replace(END, "").strip()
            text = output[:body_end].rstrip()
            if not speech:
                return AgentAction(text=text, error="ERROR: EMPTY SPEAK. Write the message to the customer after SPEAK.")
            return AgentAction(text=text, speak=speech)
        return _parse_call(output, body_start)
    return AgentAction(
        text=output.strip(), error="ERROR: NO COMMAND FOUND. Reply with PLAN, then APICALL {json} or SPEAK."
    )


def _parse_call(output: str, start: int) -> AgentAction:
    brace = output.find("{", start)
    try:
        if brace < 0 or output[start:brace].strip():
            raise ValueError("no JSON object after APICALL")
        obj, end = json.JSONDecoder().raw_decode(output, brace)
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            raise ValueError('the JSON needs a string "name"')
        params = obj.get("parameters", {})
        if not isinstance(params, dict):
            raise ValueError('"parameters" must be a JSON object')
    except ValueError as e:
        text = output[: _command_end(output, start)].rstrip()
        reason = str(e).split(":")[0] if isinstance(e, json.JSONDecodeError) else str(e)
        return AgentAction(
            text=text,
            error=f'ERROR: MALFORMED APICALL ({reason}). Use APICALL {{"name": "<api>", "parameters": {{...}}}}',
            attempted_call=True,
        )
    text = output[:end].rstrip() + f" {END}"
    return AgentAction(text=text, call=ToolCall(name=obj["name"], arguments=params), attempted_call=True)


def _command_end(output: str, start: int) -> int:
    following = _COMMAND.search(output, start)
    return following.start() if following else len(output)


def show_result(content: str) -> str:
    """A tool result as the agent reads it: JSON rows flattened to `key: value, ...`, split by ` | `.

    The same facts in a third fewer tokens: context and compute saved at every later turn,
    and more dialogues per minute when the embedded model trains. A value after `: ` starts
    with a space, as a word does in speech and, through the embedded tokenizer, inside a
    JSON call: a name read here is copied into the booking call token for token. Empty
    fields are left out; text that is not a JSON object or list (an error) is shown as it is.
    """
    try:
        value = json.loads(content)
    except ValueError:
        return content
    if isinstance(value, list) and value:
        return " | ".join(_fields(row) for row in value)
    return _fields(value) if isinstance(value, dict) and value else content


def _fields(value: Any) -> str:
    if not isinstance(value, dict):
        return _value(value)
    return ", ".join(f"{k}: {_value(v)}" for k, v in value.items() if v not in (None, ""))


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return f"({_fields(value)})"
    return value if isinstance(value, str) else json.dumps(value)


def agent_view(system: str, record: list[Message]) -> list[Message]:
    """What the agent is prompted with: tool results shown as `APIRETURN ...` user turns, as in JOSH (flattened)."""
    view = [Message(role="system", content=system)]
    for m in record:
        if m.role == "tool":
            view.append(Message(role="user", content=f"{APIRETURN} {show_result(m.content)}"))
        else:
            view.append(Message(role=m.role, content=m.content))
    return view

