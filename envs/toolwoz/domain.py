"""ToolWOZ as a domain: MultiWOZ tasks, their tool env, and the goal-agenda customer."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from core.errors import DataMissingError
from core.types import Dialogue, Message, Scenario
from envs.domain import Domain, Environment
from envs.toolwoz import data as toolwoz_data, prompts
from envs.toolwoz.agenda import Catalog, conveyed_values, customer_turn
from envs.toolwoz.env import ToolWOZEnv, oracle_reward


class ToolWOZ(Domain):
    name, title = "toolwoz", "ToolWOZ"
    agent_title, react_guidance = prompts.AGENT_TITLE, prompts.REACT_GUIDANCE

    @property
    def data(self) -> toolwoz_data.ToolWOZData:
        return toolwoz_data.load_toolwoz()  # built once, then read from the cache

    def task_ids(self, split: str) -> list[str]:
        if split not in self.data.splits:
            raise DataMissingError(f"ToolWOZ has no {split!r} split (splits: {', '.join(self.data.splits)})")
        return list(self.data.splits[split])

    def instruction(self, task_id: str) -> str:
        return self.data.tasks[task_id].instruction

    def env(self, task_id: str, rule: str | None = None) -> Environment:
        return ToolWOZEnv(self.data, self.data.tasks[task_id])

    def tool_schemas(self) -> list[dict[str, Any]]:
        return self.data.tool_schemas

    def instructions(self, style: str) -> str:
        return prompts.COMPACT_INSTRUCTIONS if style == "compact" else prompts.INSTRUCTIONS

    def oracle_reward(self, task_id: str, rule: str | None = None) -> float:
        return oracle_reward(self.data, self.data.tasks[task_id]).reward

    def reward_rule(self, rule: str | None = None) -> str:
        return "josh-train's ToolWOZ reward: the share of the goal's calls made with the right values"

    def data_version(self) -> str:
        return toolwoz_data.data_version()

    def scripted_customer(self, max_messages: int) -> "AgendaCustomer":
        return AgendaCustomer(self.data, max_messages)

    def goal_conveyed(self, dialogue: Dialogue) -> tuple[int, int] | None:
        task = self.data.tasks.get(dialogue.scenario.task_id)
        return conveyed_values(task, " ".join(m.content for m in dialogue.messages if m.role == "user")) if task else None


class AgendaCustomer:
    """The goal-agenda customer of `envs/toolwoz/agenda.py`, its phrasing seeded by the sampling seed."""

    def __init__(self, data: toolwoz_data.ToolWOZData, max_messages: int):
        self.data = data
        self.max_turns = (max_messages + 1) // 2  # the customer speaks while fewer than max_messages are visible

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.data)

    def turn(self, scenario: Scenario, visible: Sequence[Message], seed: int) -> str:
        said = [m.content for m in visible if m.role == "assistant"]
        return customer_turn(self.catalog, self.data.tasks[scenario.task_id], scenario.persona, seed, said,
                             self.max_turns).text
