"""One ToolWOZ episode: the agent's tool calls run against the task's database and are scored."""

from __future__ import annotations

import json

from core.types import ToolCall
from envs.domain import StepResult
from envs.toolwoz.data import ToolWOZData, ToolWOZTask
from envs.toolwoz.reward import CallRecord, RewardResult, score
from envs.toolwoz.tools import execute, is_rejected


class ToolWOZEnv:
    finished = False  # only the customer ends a ToolWOZ episode

    def __init__(self, data: ToolWOZData, task: ToolWOZTask):
        self.data = data
        self.task = task
        self.records: list[CallRecord] = []

    def step(self, call: ToolCall) -> StepResult:
        """Execute a call: the agent observes JSON rows, or an `ERROR:` string."""
        result = execute(self.data, self.task, call)
        self.records.append(CallRecord(call, result))
        return StepResult(result if isinstance(result, str) else json.dumps(result), not is_rejected(result))

    def hear(self, reply: str) -> None:
        """The reward reads calls only."""

    def reward(self) -> RewardResult:
        return score(self.task, self.records)

    def fork(self) -> "ToolWOZEnv":
        twin = ToolWOZEnv(self.data, self.task)
        twin.records = list(self.records)
        return twin


def oracle_reward(data: ToolWOZData, task: ToolWOZTask) -> RewardResult:
    """Replay the ground-truth calls: the best any agent can score on this task."""
    env = ToolWOZEnv(data, task)
    for call in task.ground_truth_calls():
        env.step(call)
    return env.reward()
