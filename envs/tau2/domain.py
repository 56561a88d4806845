"""τ²-bench retail, airline and telecom as domains: the package's tasks, splits, tools, policy and evaluators. The
customer is a model given the task's scenario (hanging up with `###STOP###`, as τ²'s own) or, offline, its agenda.
Telecom's customer also holds a phone: a model customer is shown its tools and calls them as `<tool_call>`; the
offline one runs the ground truth's device actions when the agent's last words name them (`DeviceAgenda`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from core.types import Message, Scenario, ToolCall
from envs.domain import Domain
from envs.taubench import user as tau_user
from envs.taubench.domain import InstructionAgenda
from formats import function_calling
from envs.tau2 import data
from envs.tau2.env import Tau2Env, reward_basis


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
        """The ground truth's actions made (the customer's on its device) and its facts said, scored by τ²'s evaluators."""
        task, env = self._task(task_id), self.env(task_id)
        for action in task.evaluation_criteria.actions or []:
            call = ToolCall(name=action.name, arguments=dict(action.arguments))
            env.user_step(call) if action.requestor == "user" else env.step(call)
        env.hear(" ".join(task.evaluation_criteria.communicate_info or []) or "Done.")
        return env.reward().reward

    def assertions(self, task_id: str) -> list[str]:
        criteria = self._task(task_id).evaluation_criteria
        return list(criteria.nl_assertions or []) if "NL_ASSERTION" in reward_basis(criteria) else []

    def reward_rule(self, rule: str | None = None) -> str:
        return "τ²-bench's evaluators: the product of each task's reward basis (DB, ENV_ASSERTION, ACTION, COMMUNICATE)"

    def customer_tools(self) -> list[dict[str, Any]]:
        return self._customer_tools

    @cached_property
    def _customer_tools(self) -> list[dict[str, Any]]:
        env = data.package(self.short).get_environment()
        return [t.openai_schema for t in env.get_user_tools()] if env.user_tools is not None else []

    def data_version(self) -> str:
        return data.data_version()

    def customer_view(self, scenario: Scenario, visible: list[Message]) -> list[Message]:
        view = tau_user.user_view(scenario, visible)
        if tools := self.customer_tools():
            phone = function_calling.system_prompt("You hold the phone the agent helps you with.", tools, native=False)
            view[0] = Message(role="system", content=f"{view[0].content}\n{phone}")
        return view

    def scripted_customer(self, max_messages: int) -> "InstructionAgenda | DeviceAgenda":
        return DeviceAgenda(self) if self.customer_tools() else InstructionAgenda()


_NOT_NAMING = {"check", "set", "toggle", "turn", "reset", "run", "can", "get", "make", "send", "mode", "status"}


class DeviceAgenda:
    """The offline telecom customer: it reports the result of its last call; runs the next ground-truth device action
    once the agent's last words name it (its name's other words, "roaming" for toggle_roaming); else tells the
    next sentence of its scenario; then hangs up."""

    def __init__(self, bench: Tau2Bench):
        self.bench = bench

    def turn(self, scenario: Scenario, visible: Sequence[Message], seed: int) -> str:
        if visible and visible[-1].role == "tool":
            return f"My phone shows: {visible[-1].content}"
        task = self.bench._task(scenario.task_id)
        mine = [a for a in task.evaluation_criteria.actions or [] if a.requestor == "user"]
        made = sum(m.role == "user" and function_calling.OPEN in m.content for m in visible)
        heard = next((m.content.lower() for m in reversed(visible) if m.role == "assistant"), "")
        if made < len(mine) and all(w in heard for w in re.split(r"_", mine[made].name) if w not in _NOT_NAMING):
            action = mine[made]
            return function_calling.format_call(ToolCall(name=action.name, arguments=dict(action.arguments)))
        told = sum(m.role == "user" and function_calling.OPEN not in m.content and not m.content.startswith("My phone")
                   for m in visible)
        return tau_user.scripted_turn(scenario.instruction, told)
