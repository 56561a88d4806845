"""What a domain gives the generic stages: tasks per split, a fresh environment per episode, what the agent and a
model customer are told, a scripted customer if it has one, and how much of its goal a dialogue conveyed.

Rollout, JOSH, evaluation and curation ask a domain (`envs.registry.domain(name)`) and never branch on its name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.types import Dialogue, Message, Persona, Scenario, ToolCall
from formats import react, user_sim


@dataclass(frozen=True)
class StepResult:
    """What a tool call gave: the text the agent reads, and whether the tools took the call."""

    text: str
    ok: bool


def is_error(text: str) -> bool:
    """A rejected or malformed call's text, as every domain and format words it (`ERROR: ...`, `Error: ...`): how a
    recorded dialogue shows a failed call (a live episode reads `StepResult.ok`)."""
    return text[:5].lower() == "error"


class Environment(Protocol):
    finished: bool  # the environment ended the episode (tau-bench: the customer was transferred)

    def step(self, call: ToolCall) -> StepResult: ...
    def hear(self, reply: str) -> None: ...  # what the agent said to the customer (tau-bench looks for outputs there)
    def reward(self): ...  # has .reward (float), .success (bool) and .earned (one bool per sub-goal); τ²'s also
    # .breakdown (its reward basis: component -> 0/1) and .judged
    def fork(self) -> "Environment": ...  # an independent copy of the state so far (JOSH branches)
    # a domain whose customer has tools (`Domain.customer_tools`, τ² telecom) also has
    # user_step(call) -> StepResult: the customer's own call, on its own device




class ScriptedCustomer(Protocol):
    """A customer with no model behind it (`user.spec=agenda`): the next thing it says, from what it has seen."""

    def turn(self, scenario: Scenario, visible: Sequence[Message], seed: int) -> str: ...


class Domain(ABC):
    name: str
    title: str  # for reports

    @abstractmethod
    def task_ids(self, split: str) -> list[str]: ...

    @abstractmethod
    def instruction(self, task_id: str) -> str:
        """What the customer is after (the user simulator's goal)."""

    @abstractmethod
    def env(self, task_id: str, rule: str | None = None) -> Environment:
        """A fresh episode of the task, scored by the reward `rule` (None: the domain's default; only tau-bench v1 has two)."""

    @abstractmethod
    def tool_schemas(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    def instructions(self, style: str) -> str:
        """The agent's system prompt before the format's own: `compact` for tiny models with a short context."""

    @abstractmethod
    def oracle_reward(self, task_id: str, rule: str | None = None) -> float:
        """What replaying the ground truth scores: the task's ceiling."""

    @abstractmethod
    def reward_rule(self, rule: str | None = None) -> str:
        """What the reward checks, as a report says it."""

    @abstractmethod
    def data_version(self) -> str: ...

    stop_marker: str = user_sim.END_MARKER  # what a model customer writes to hang up
    react_guidance: str = ""  # what the ReAct prompt adds after its commands: the domain's rules, an example
    agent_title: str = "an agent"  # who a model customer is told it talks to (`formats/user_sim.py`)

    def scenario(self, task_id: str, persona: Persona | None = None) -> Scenario:
        return Scenario(domain=self.name, task_id=task_id, instruction=self.instruction(task_id), persona=persona)

    def react_system(self, style: str) -> str:
        guidance = self.react_guidance if style == "full" else ""
        return react.system_prompt(self.instructions(style), self.tool_schemas(), style, guidance)

    def assertions(self, task_id: str) -> list[str]:
        """What an LLM judge must find the agent did, where the task's reward asks a judge (τ²'s NL_ASSERTION)."""
        return []

    def customer_view(self, scenario: Scenario, visible: list[Message]) -> list[Message]:
        """What a model customer is prompted with: by default the goal prompt (`formats/user_sim.py`)."""
        return user_sim.user_view(scenario, visible, self.agent_title)

    def customer_tools(self) -> list[dict[str, Any]]:
        """Tool schemas the customer itself calls (dual control: τ² telecom's phone); none by default."""
        return []

    def scripted_customer(self, max_messages: int) -> ScriptedCustomer | None:
        """The domain's customer without a model, if it has one."""
        return None

    def goal_conveyed(self, dialogue: Dialogue) -> tuple[int, int] | None:
        """(goal values the customer said, goal values there are), where the domain can tell."""
        return None

