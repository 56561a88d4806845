"""tau-bench retail and airline as domains: upstream's tasks, tools and policy, its customer prompt and agenda."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from typing import Any

from core.types import Message, Scenario, ToolCall
from envs.domain import Domain, Environment
from envs.taubench import data as tau_data
from envs.taubench import user as tau_user
from envs.taubench.env import TOOLS, TauEnv
from envs.taubench.reward import RULES, TERMINATE_TOOLS
from envs.toolwoz.data import DISTRIBUTION


class TauBench(Domain):
    stop_marker = tau_user.STOP

    def __init__(self, name: str):
        self.name, self.title = name, f"tau-bench {name}"
        self.agent_title = f"a {name} customer service agent"

    def _task(self, task_id: str) -> tau_data.TauTask:
        _, split, index = task_id.split("-")
        return tau_data.load_tasks(self.name, split)[int(index)]

    def task_ids(self, split: str) -> list[str]:
        return [t.id for t in tau_data.load_tasks(self.name, split)]

    def instruction(self, task_id: str) -> str:
        return self._task(task_id).instruction

    def env(self, task_id: str, rule: str | None = None) -> TauEnv:
        return TauEnv(self._task(task_id), rule or "upstream")

    def tool_schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in TOOLS[self.name].values()]

    def instructions(self, style: str) -> str:
        if style == "compact":  # the policy alone is longer than a tiny model's context
            return f"You are a {self.name} customer service agent."
        return tau_data.policy(self.name)

    def oracle_reward(self, task_id: str, rule: str | None = None) -> float:
        """The ground truth's actions made and its outputs said, scored as an episode is."""
        env = self.env(task_id, rule)
        for action in self._task(task_id).actions:
            if action.name not in TERMINATE_TOOLS:
                env.step(ToolCall(name=action.name, arguments=dict(action.kwargs)))
        env.hear(" ".join(self._task(task_id).outputs))
        return env.reward().reward

    def reward_rule(self, rule: str | None = None) -> str:
        return f"{rule or 'upstream'}: {RULES[rule or 'upstream']}"

    def data_version(self) -> str:
        return f"{importlib.metadata.version(DISTRIBUTION)}-taubench"

    def customer_view(self, scenario: Scenario, visible: list[Message]) -> list[Message]:
        return tau_user.user_view(scenario, visible)

    def scripted_customer(self, max_messages: int) -> "InstructionAgenda":
        return InstructionAgenda()


class InstructionAgenda:
    """The instruction's sentences told one per turn in the first person, then the stop marker."""

    def turn(self, scenario: Scenario, visible: Sequence[Message], seed: int) -> str:
        return tau_user.scripted_turn(scenario.instruction, sum(m.role == "user" for m in visible))
