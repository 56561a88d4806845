"""The function-calling agent format: tools as OpenAI schemas, a reply is either a tool call or words to the customer.

With an `openai:` backend the schemas go out as the request's `tools` and calls come back natively
(`tool_calls`, results as `tool` messages with their call ids). A local model reads the schemas in
its system prompt and writes a call as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
(the convention Hermes / Qwen chat templates use); results come back as `<tool_response>` turns.
Either way a malformed call (bad JSON, no name, arguments not an object) becomes an error result
the agent reads and can correct, never an exception.
"""

from __future__ import annotations

import json
from typing import Any

from core.types import Message, ToolCall
from core.types import Generation
from formats.react import AgentAction

OPEN, CLOSE = "<tool_call>", "</tool_call>"
USAGE = f'{OPEN}{{"name": "<tool name>", "arguments": {{...}}}}{CLOSE}'

_INSTRUCTIONS = """
# Tools
To call a tool, reply with one call and nothing after it:
{usage}
Its result comes back as <tool_response>...</tool_response> and you continue. Any reply without a call is sent to the customer.
Available tools (JSON schemas):
{schemas}"""


def system_prompt(instructions: str, tool_schemas: list[dict[str, Any]], native: bool) -> str:
    """The domain's instructions; for a model without native tools, the schemas and the call syntax too."""
    if native:
        return instructions
    return instructions + _INSTRUCTIONS.format(usage=USAGE, schemas=json.dumps(tool_schemas, indent=1))


def format_call(call: ToolCall) -> str:
    return f"{OPEN}{json.dumps({'name': call.name, 'arguments': call.arguments})}{CLOSE}"


def parse(gen: Generation) -> AgentAction:
    """The first call of a generation (native or written), else its text as words to the customer."""
    if gen.tool_calls:
        native = gen.tool_calls[0]
        return _call(gen.text, native.name, native.arguments, native.id)
    start = gen.text.find(OPEN)
    if start < 0:
        return AgentAction(text=gen.text.strip(), speak=gen.text.strip())
    end = gen.text.find(CLOSE, start)
    body_end = end if end >= 0 else len(gen.text)
    text = gen.text[: body_end + len(CLOSE) if end >= 0 else body_end].strip()
    try:
        obj = json.loads(gen.text[start + len(OPEN): body_end])
    except ValueError as e:
        return _malformed(text, f"not JSON: {str(e).split(':')[0]}")
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return _malformed(text, 'the call needs a string "name"')
    return _call(text, obj["name"], obj.get("arguments", {}), None)


def _call(text: str, name: str, arguments: Any, call_id: str | None) -> AgentAction:
    native = call_id is not None
    if isinstance(arguments, str):  # native calls carry their arguments as a JSON string
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError as e:
            return _malformed(text, f"arguments are not JSON: {str(e).split(':')[0]}", native)
    if not isinstance(arguments, dict):
        return _malformed(text, "arguments must be a JSON object", native)
    return AgentAction(text=text, call=ToolCall(name=name, arguments=arguments, id=call_id), attempted_call=True)


def _malformed(text: str, reason: str, native: bool = False) -> AgentAction:
    fix = "Call the tool again with its arguments as one JSON object." if native else f"Call a tool as {USAGE}"
    return AgentAction(text=text, error=f"Error: malformed tool call ({reason}). {fix}", attempted_call=True)


def agent_view(system: str, record: list[Message], native: bool) -> list[Message]:
    """Native: the record as it is (calls with ids, `tool` results). Written: results as `<tool_response>` user turns,
    and a native call written out as text (so a record made with an API model trains a local one)."""
    view = [Message(role="system", content=system)]
    for m in record:
        if native and (m.role != "tool" or m.tool_call_id):
            view.append(m)
        elif m.role == "tool":
            view.append(Message(role="user", content=f"<tool_response>\n{m.content}\n</tool_response>"))
        elif m.role == "assistant" and m.tool_calls and OPEN not in m.content:
            written = format_call(m.tool_calls[0])
            view.append(Message(role="assistant", content=f"{m.content}\n{written}" if m.content else written))
        else:
            view.append(m)
    return view
