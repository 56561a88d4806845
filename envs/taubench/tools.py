"""How a tau-bench tool is declared and called: the function, with its OpenAI function schema beside it.

A tool takes the episode's database (mutated in place) and its arguments, and returns the text
the agent sees. A refusal is a result too ("Error: ..."), as upstream tau-bench returns it; a
call the tool cannot even take (unknown name, missing or unexpected arguments, arguments of the
wrong shape that make the tool raise) becomes an error result the same way, so a malformed call
never stops an episode.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments
    run: Callable[..., str]

    def schema(self) -> dict[str, Any]:
        """The OpenAI `tools` entry."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


def tool(registry: dict[str, Tool], description: str, **properties: dict[str, Any]):
    """Register `fn(db, **arguments) -> str` under its name; every argument without a default is required."""

    def register(fn: Callable[..., str]) -> Callable[..., str]:
        signature = inspect.signature(fn)
        required = [name for name, p in list(signature.parameters.items())[1:] if p.default is inspect.Parameter.empty]
        registry[fn.__name__] = Tool(fn.__name__, description,
                                     {"type": "object", "properties": properties, "required": required}, fn)
        return fn

    return register


def call(registry: dict[str, Tool], db: dict[str, Any], name: str, arguments: dict[str, Any]) -> str:
    """Run a tool call against `db`; every problem with the call itself comes back as an error result."""
    found = registry.get(name)
    if found is None:
        return f"Error: unknown tool {name!r} (tools: {', '.join(sorted(registry))})"
    if not isinstance(arguments, dict):
        return f"Error: the arguments of {name} must be a JSON object"
    try:
        inspect.signature(found.run).bind(db, **arguments)
    except TypeError as e:
        return f"Error: {name}: {e}"
    try:
        return found.run(db, **copy.deepcopy(arguments))  # a tool may store them: never alias the caller's (a task's) data
    except Exception as e:  # malformed nested arguments (a flight without a date): upstream's environment says so too
        return f"Error: {e}"


def dumps(value: Any) -> str:
    """A record as the agent sees it (upstream's format: JSON)."""
    return json.dumps(value)

