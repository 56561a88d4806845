"""The typed vocabulary every stage shares: messages, tool calls, personas, scenarios, dialogues.

Stages meet only through these types (and their dataset rows, see `core.records`), so a
new environment, model backend or data builder never has to guess at dict layouts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]


class StrictModel(BaseModel):
    """A config: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolCall(Frozen):
    """One call of a tool by name with JSON arguments, as the agent wrote it."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class Message(Frozen):
    """One chat message. `tool_calls` are parsed from an assistant turn; `tool` messages carry results."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


class Persona(Frozen):
    """A simulated user's identity: attributes plus the text the user simulator is prompted with."""

    attributes: dict[str, str] = Field(default_factory=dict)
    text: str = ""

    @property
    def id(self) -> str:
        """Persona id = hash of its attributes, so the same draw always has the same id."""
        blob = json.dumps(self.attributes, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


class Scenario(Frozen):
    """A domain task as the user simulator pursues it, optionally played by a persona."""

    domain: str
    task_id: str
    instruction: str
    persona: Persona | None = None

    @property
    def id(self) -> str:
        return f"{self.domain}/{self.task_id}" + (f"/{self.persona.id}" if self.persona else "")


class Termination(str, Enum):
    """Why a dialogue stopped; recorded on every dialogue so runs can be audited."""

    user_ended = "user_ended"  # the user simulator wrote its end marker
    turn_cap = "turn_cap"
    empty_output = "empty_output"  # either side generated nothing
    non_coherent = "non_coherent"  # a reply looped (see formats.stops)
    role_flip = "role_flip"  # the user simulator wrote agent actions
    agent_retries_exhausted = "agent_retries_exhausted"  # no SPEAK within the agent's step budget
    all_rewards_earned = "all_rewards_earned"  # JOSH: nothing left to earn, the conversation is cut there
    transferred = "transferred"  # tau-bench: the agent handed the customer to a human (the episode ends there)
    conversation_end = "conversation_end"  # workflow domains: a closing step, an end phrase or the phase check


class Outcome(Frozen):
    reward: float = 0.0
    success: bool = False
    termination: Termination = Termination.turn_cap
    turns: int = 0
    api_calls: int = 0
    invalid_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    workflow_steps: int | None = None  # workflow domains: steps the agent completed (Self-talk's absolute depth)
    workflow_depth: float | None = None  # ... divided by the steps on the workflow's longest path
    reward_basis: dict[str, float] = {}  # τ²-bench: each part of the reward (DB, ENV_ASSERTION, ACTION, COMMUNICATE)
    judged: bool = True  # False: the reward needs an LLM judge and none was configured (reward 0, counted apart)


class Dialogue(Frozen):
    """A finished conversation: the scenario, every message (incl. tool calls/results), the outcome."""

    scenario: Scenario
    messages: tuple[Message, ...]
    outcome: Outcome
    agent_model: str = ""
    user_model: str = ""

    @property
    def id(self) -> str:
        return self.scenario.id


class TreeNode(Frozen):
    """One agent turn in a JOSH tree, with what became of its branch."""

    messages: tuple[Message, ...]  # the agent's record from the start through the end of this turn
    turn_start: int  # where this turn's agent messages begin: messages[:turn_start] is its prompt
    is_successful: bool = False  # its branch earned a sub-goal the others had not (it became a root)
    is_golden: bool = False  # on the final path of a tree that earned every sub-goal

    @property
    def turn(self) -> tuple[Message, ...]:
        return self.messages[self.turn_start :]


class Usage(Frozen):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class JoshTree(Frozen):
    """A JOSH search on one scenario: the conversation that came out of it and every node it explored."""

    dialogue: Dialogue  # the path the search settled on (the golden path when every sub-goal was earned)
    nodes: tuple[TreeNode, ...]
    agent_usage: Usage = Usage()  # tokens over the whole tree, every branch included
    user_usage: Usage = Usage()


class PreferencePair(Frozen):
    """Where two branches diverged: the same prompt, the agent message that earned reward, one that did not."""

    scenario_id: str  # the dialogue it came from: curation keeps or drops pairs with their dialogue
    task_id: str
    prompt: tuple[Message, ...]  # the shared prefix, in the agent's record format
    chosen: Message
    rejected: Message


@dataclass(frozen=True)
class FunctionCall:
    """A tool call a backend returned natively (OpenAI `tool_calls`): arguments as the model wrote them, unparsed,
    so that malformed JSON reaches the agent format's parser and becomes an error the agent sees."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Generation:
    """One sampled reply with the tokens it cost, so runs can report usage per model."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    tool_calls: tuple[FunctionCall, ...] = ()  # native function calling only
