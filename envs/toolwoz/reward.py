"""ToolWOZ's sparse reward: the share of ground-truth calls the agent got right.

A ground-truth book call counts when some booking call carried all its parameters (even
one the tool rejected: josh-train scores it so, and we keep its numbers comparable); a ground-truth search counts when a search returned the right
entity (or, with nothing to book, a row meeting every goal constraint). Order and extra
calls are not penalised. Pure functions of the task and the calls made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.types import ToolCall
from envs.toolwoz.data import ToolWOZTask, unique_id_key
from envs.toolwoz.tools import ToolResult, is_rejected, is_subset


@dataclass(frozen=True)
class CallRecord:
    call: ToolCall
    result: ToolResult

    @property
    def returned(self) -> Any:
        """What the reward looks at: the first row of a search, the whole booking reply."""
        if isinstance(self.result, list):
            return self.result[0] if self.result else None
        return self.result


@dataclass(frozen=True)
class RewardResult:
    reward: float
    earned: tuple[bool, ...]  # one per ground-truth call, in `task.ground_truth_calls()` order

    @property
    def success(self) -> bool:
        return bool(self.earned) and all(self.earned)


def score(task: ToolWOZTask, records: list[CallRecord]) -> RewardResult:
    earned = tuple(_earned(task, gt, records) for gt in task.ground_truth_calls())
    return RewardResult(reward=sum(earned) / len(earned) if earned else 0.0, earned=earned)


def _earned(task: ToolWOZTask, gt: ToolCall, records: list[CallRecord]) -> bool:
    action, domain = gt.name.split("_")
    mine = [r for r in records if r.call.name == gt.name]
    if action == "book":
        return any(is_subset(gt.arguments, r.call.arguments) for r in mine)
    goal = task.goals[domain]
    key = unique_id_key(domain)
    booked_id = goal.book[key] if goal.book else ""
    for r in mine:
        row = r.returned
        if not row or is_rejected(row):
            continue
        complete = is_subset(gt.arguments, r.call.arguments)
        if not complete and not is_subset(r.call.arguments, gt.arguments):
            continue
        if booked_id:
            if row.get(key) == booked_id:
                return True
        elif complete or is_subset(gt.arguments, row):
            return True
    return False
