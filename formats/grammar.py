"""What an agent may write, as a grammar a local model's decoding is held to (structured generation, llguidance's
Lark dialect): the ReAct format's markers, and every APICALL's JSON to one of the domain's tool schemas.

A small model then only chooses what it says and which values it copies; it can no longer write a call the tools
cannot read, a parameter the API does not have, or prose with no command. Kept apart from `formats/react.py`, whose
code is part of the embedded model's cache key.
"""

from __future__ import annotations

import json
from typing import Any

from formats import function_calling
from formats.react import END

# Bounds that make every reply end: free text and a call's text values are finite, so a model that would ramble
# reaches the end marker within a known number of tokens instead of its token budget.
TEXT_CHARS, VALUE_CHARS = 400, 80


def call_schema(tool_schemas: list[dict[str, Any]], arguments: str = "parameters") -> dict[str, Any]:
    """One call's JSON: `{"name": <one of the tools>, <arguments>: {<only that tool's parameters>}}`, spaced as
    `json.dumps` spaces it (as the formats write calls), with no other whitespace to pad it with."""
    return {"x-guidance": {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}, "oneOf": [{
        "type": "object",
        "properties": {"name": {"const": t["function"]["name"]}, arguments: _parameters(t["function"]["parameters"])},
        "required": ["name", arguments],
        "additionalProperties": False,
    } for t in tool_schemas]}


def react_grammar(tool_schemas: list[dict[str, Any]]) -> str:
    """An optional PLAN, then one APICALL (JSON to the schemas) or SPEAK, each ended by the format's end marker.
    Free text may not hold '<' (the end marker's first character), so it cannot end early or write another one;
    SPEAK says something (its first character is not blank)."""
    return "\n".join([
        "start: (PLAN WS)? action",
        f'action: "APICALL " call " {END}" | SPEAK',
        f"call: %json {json.dumps(call_schema(tool_schemas))}",
        f"PLAN: /PLAN [^<]{{0,{TEXT_CHARS}}}{END}/",
        f"SPEAK: /SPEAK [^< \\n][^<]{{0,{TEXT_CHARS}}} {END}/",
        "WS: /[ \\n]+/",
    ])


def function_calling_grammar(tool_schemas: list[dict[str, Any]]) -> str:
    """Words to the customer (no '<'), or one `<tool_call>` whose JSON fits a tool's schema, as a local model writes
    it (`formats/function_calling.py`)."""
    return "\n".join([
        f'start: SAY | "{function_calling.OPEN}" call "{function_calling.CLOSE}"',
        f"call: %json {json.dumps(call_schema(tool_schemas, 'arguments'))}",
        "SAY: /[^<]*[^< \n][^<]*/",
    ])


def _parameters(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's parameters, no others, each text value at most `VALUE_CHARS` long."""
    properties = {name: {**p, "maxLength": VALUE_CHARS} if p.get("type") == "string" and "maxLength" not in p else p
                  for name, p in schema.get("properties", {}).items()}
    return {**schema, "properties": properties, "additionalProperties": False}
