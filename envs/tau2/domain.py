"""τ²-bench retail and airline as domains: the package's tasks, splits, tools, policy and evaluators; the customer is
a model given the task's scenario (hanging up with `###STOP###`, as τ²'s own) or, offline, its agenda."""

from __future__ import annotations

from typing import Any

from core.types import Message, Scenario, ToolCall
from envs.domain import Domain
from envs.taubench import user as tau_user
from envs.taubench.domain import InstructionAgenda
from envs.tau2 import data
from envs.tau2.env import TERMINATE_TOOLS, Tau2Env


class Tau2Bench(Domain):
    stop_marker = tau_user.STOP

    def __init__(self, name: str):
        self.name, self.short = name, name.removeprefix("tau2-")
        self.title = f"τ²-bench {self.short}"
        self.agent_title = f"a {self.short} customer service agent"

    def _task(self, task_id: str):
        split, own = task_id.removeprefix(f"{self.name}-").split("-", 1)
        return data.tasks(self.short, split)[own]

    def task_ids(self, split: str) -> list[str]:
        return [f"{self.name}-{split}-{own}" for own in data.tasks(self.short, split)]

    def instruction(self, task_id: str) -> str:
        return data.instruction(self._task(task_id))

    def env(self, task_id: str, rule: str | None = None) -> Tau2Env:
        return Tau2Env(data.package(self.short), self._task(task_id))

    def tool_schemas(self) -> list[dict[str, Any]]:
        return [t.openai_schema for t in data.package(self.short).get_environment().get_tools()]

    def instructions(self, style: str) -> str:
        if style == "compact":  # the policy alone is longer than a tiny model's context
            return f"You are a {self.short} customer service agent."
        return data.package(self.short).get_environment().get_policy()

    def oracle_reward(self, task_id: str, rule: str | None = None) -> float:
        """The ground truth's agent actions made and its facts said, scored by τ²'s evaluators."""
        task, env = self._task(task_id), self.env(task_id)
        for action in task.evaluation_criteria.actions or []:
            if action.requestor == "assistant" and action.name not in TERMINATE_TOOLS:
                env.step(ToolCall(name=action.name, arguments=dict(action.arguments)))
        env.hear(" ".join(task.evaluation_criteria.communicate_info or []) or "Done.")
        return env.reward().reward

    def reward_rule(self, rule: str | None = None) -> str:
        return "τ²-bench's evaluators: the product of each task's reward basis (DB, ACTION, COMMUNICATE)"

    def data_version(self) -> str:
        return data.data_version()

    def customer_view(self, scenario: Scenario, visible: list[Message]) -> list[Message]:
        return tau_user.user_view(scenario, visible)

    def scripted_customer(self, max_messages: int) -> InstructionAgenda:
        return InstructionAgenda()
