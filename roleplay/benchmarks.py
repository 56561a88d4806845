"""The benchmarks agents are simulated and evaluated on, behind one interface: ToolWOZ, tau-bench retail and airline.

A benchmark names its tasks per split, turns a task into a scenario and a fresh environment, and says
what the agent is told (its tools' schemas, its instructions). `episode` puts a scenario, its
environment and the agent format together; the rollout, JOSH and the flows see nothing else.
"""

from __future__ import annotations

import importlib.metadata
import json
from abc import ABC, abstractmethod
from functools import cache
from typing import Any

from core.config import RolePlayConfig
from core.errors import DataMissingError
from core.types import Persona, Scenario
from envs.taubench import data as tau_data
from envs.taubench.env import TOOLS as TAU_TOOLS, TauEnv
from envs.toolwoz import data as toolwoz_data
from envs.toolwoz.env import ToolWOZEnv, oracle_reward
from formats import function_calling, react
from models.specs import parse_spec
from roleplay.rollout import AgentFormat, Environment, Episode


class Benchmark(ABC):
    name: str
    title: str  # for reports

    @abstractmethod
    def task_ids(self, split: str) -> list[str]: ...

    @abstractmethod
    def instruction(self, task_id: str) -> str:
        """What the customer is after (the user simulator's goal)."""

    @abstractmethod
    def env(self, task_id: str) -> Environment: ...

    @abstractmethod
    def tool_schemas(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    def instructions(self, style: str) -> str:
        """The agent's system prompt before the format's own: `compact` for tiny models with a short context."""

    @abstractmethod
    def oracle_reward(self, task_id: str) -> float:
        """What replaying the ground truth scores: the task's ceiling."""

    @abstractmethod
    def data_version(self) -> str: ...

    def scenario(self, task_id: str, persona: Persona | None = None) -> Scenario:
        return Scenario(domain=self.name, task_id=task_id, instruction=self.instruction(task_id), persona=persona)

    def react_system(self, style: str) -> str:
        if style == "compact":
            signatures = "\n".join(f"{s['function']['name']}({', '.join(s['function']['parameters']['properties'])})"
                                   for s in self.tool_schemas())
            return f"{self.instructions(style)} Reply PLAN then APICALL {{json}} or SPEAK text.\nAPIs:\n{signatures}"
        return self.instructions(style) + _REACT_COMMANDS.format(end=react.END, ret=react.APIRETURN,
                                                                 schemas=json.dumps(self.tool_schemas(), indent=1))


_REACT_COMMANDS = """

# Commands
Every reply is one PLAN followed by exactly one action, each ended by {end}:
- PLAN <your private reasoning about what to do next> {end}
- APICALL {{"name": "<api name>", "parameters": {{...}}}} {end}  calls an API; its result comes back as an {ret} message and you continue.
- SPEAK <message to the customer> {end}  ends your turn; the customer sees only what you SPEAK.

# APIs
{schemas}"""


class ToolWOZ(Benchmark):
    name, title = "toolwoz", "ToolWOZ"

    @property
    def data(self) -> toolwoz_data.ToolWOZData:
        return toolwoz_data.load_toolwoz()  # built once, then read from the cache

    def task_ids(self, split: str) -> list[str]:
        if split not in self.data.splits:
            raise DataMissingError(f"ToolWOZ has no {split!r} split (splits: {', '.join(self.data.splits)})")
        return list(self.data.splits[split])

    def instruction(self, task_id: str) -> str:
        return self.data.tasks[task_id].instruction

    def env(self, task_id: str) -> Environment:
        return ToolWOZEnv(self.data, self.data.tasks[task_id])

    def tool_schemas(self) -> list[dict[str, Any]]:
        return self.data.tool_schemas

    def instructions(self, style: str) -> str:
        return ("You are a travel agent helping a customer book restaurants, hotels, attractions and trains in Cambridge. "
                "Use the tools to find and book things; never answer from your own knowledge.")

    def react_system(self, style: str) -> str:
        return react.system_prompt(self.tool_schemas(), style)  # the embedded model was trained on exactly this

    def oracle_reward(self, task_id: str) -> float:
        return oracle_reward(self.data, self.data.tasks[task_id]).reward

    def data_version(self) -> str:
        return toolwoz_data.data_version()


class TauBench(Benchmark):
    def __init__(self, domain: str):
        self.name, self.title = domain, f"tau-bench {domain}"

    def _task(self, task_id: str) -> tau_data.TauTask:
        _, split, index = task_id.split("-")
        return tau_data.load_tasks(self.name, split)[int(index)]

    def task_ids(self, split: str) -> list[str]:
        return [t.id for t in tau_data.load_tasks(self.name, split)]

    def instruction(self, task_id: str) -> str:
        return self._task(task_id).instruction

    def env(self, task_id: str) -> Environment:
        return TauEnv(self._task(task_id))

    def tool_schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in TAU_TOOLS[self.name].values()]

    def instructions(self, style: str) -> str:
        if style == "compact":  # the policy alone is longer than a tiny model's context
            return f"You are a {self.name} customer service agent."
        return tau_data.policy(self.name)

    def oracle_reward(self, task_id: str) -> float:
        """1.0: the reward is defined by the ground truth's replay (tests replay every test task to check it)."""
        return 1.0

    def data_version(self) -> str:
        return f"{importlib.metadata.version(toolwoz_data.DISTRIBUTION)}-taubench"


@cache
def benchmark(name: str) -> Benchmark:
    return ToolWOZ() if name == "toolwoz" else TauBench(name)


def agent_format(bench: Benchmark, cfg: RolePlayConfig, native: bool | None = None) -> AgentFormat:
    """The agent's format from the config: ReAct text, or function calling (native with an `openai:` agent
    unless `native` says otherwise)."""
    if cfg.agent_format == "react":
        return AgentFormat.react(bench.react_system(cfg.agent_prompt))
    if native is None:
        native = parse_spec(cfg.agent.spec)[0] == "openai"
    schemas = bench.tool_schemas()
    system = function_calling.system_prompt(bench.instructions(cfg.agent_prompt), schemas, native)
    return AgentFormat.function_calling(system, schemas, native)


def episode(bench: Benchmark, scenario: Scenario, fmt: AgentFormat, cfg: RolePlayConfig) -> Episode:
    return Episode(scenario, bench.env(scenario.task_id), fmt, max_messages=cfg.max_messages,
                   max_agent_steps=cfg.max_agent_steps)
