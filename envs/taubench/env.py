"""One tau-bench episode: the agent's calls run against a private copy of the domain's database and are scored
by the rule the run names (`envs/taubench/reward.py`), plus one flag per ground-truth action for JOSH to collapse on.

A JOSH branch forks the episode: the twins share the database until one of them runs a tool that
writes, which first takes its own copy (a deep copy costs about as much as a whole rollout turn).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import Any

from core.types import ToolCall
from envs.domain import StepResult, is_error
from envs.taubench import airline, retail
from envs.taubench.data import TauTask, fresh_database, state_hash
from envs.taubench.reward import TERMINATE_TOOLS, TauReward, TauRule, ground_truth, judge
from envs.taubench.tools import Tool, call

TOOLS: dict[str, dict[str, Tool]] = {"retail": retail.TOOLS, "airline": airline.TOOLS}
WRITES: dict[str, frozenset[str]] = {"retail": retail.WRITES, "airline": airline.WRITES}


@dataclass(frozen=True)
class EpisodeReward:
    reward: float  # 0 or 1
    earned: tuple[bool, ...]  # per ground-truth action: a call with its name and arguments was accepted (made, for
    # a ground-truth action the tools refuse)
    detail: TauReward

    @property
    def success(self) -> bool:
        return self.reward == 1.0


@cache
def _fresh_hash(domain: str) -> str:
    return state_hash(fresh_database(domain))


_EXPECTED: dict[str, tuple[str, tuple[bool, ...]]] = {}  # task id -> ground_truth(task) (tasks hold dicts: not hashable)


def _expected(task: TauTask) -> tuple[str, tuple[bool, ...]]:
    if task.id not in _EXPECTED:
        _EXPECTED[task.id] = ground_truth(task, TOOLS[task.domain])
    return _EXPECTED[task.id]


class TauEnv:
    def __init__(self, task: TauTask, rule: TauRule = "upstream"):
        self.task, self.rule = task, rule
        self.tools = TOOLS[task.domain]
        self.db: dict[str, Any] | None = None  # loaded on the first call
        self.shared = False  # the db is also a twin's: copy before writing
        self.changed = False  # a write was accepted: the state may differ from the fresh one
        self.made: list[tuple[str, dict[str, Any], bool]] = []  # every call: name, arguments, accepted
        self.replies: list[str] = []
        self.finished = False  # the agent transferred the customer: the episode ends
        self._scored: EpisodeReward | None = None

    def step(self, tool_call: ToolCall) -> StepResult:
        """Run the call; the result (JSON, text or `Error: ...`) is what the agent observes."""
        self._scored = None
        if self.db is None:
            self.db = fresh_database(self.task.domain)
        writes = tool_call.name in WRITES[self.task.domain]
        if writes and self.shared:
            self.db, self.shared = copy.deepcopy(self.db), False
        result = call(self.tools, self.db, tool_call.name, tool_call.arguments)
        self.made.append((tool_call.name, tool_call.arguments, not is_error(result)))
        self.changed |= writes  # even refused: a tool may have changed something before it failed
        self.finished |= tool_call.name in TERMINATE_TOOLS
        return StepResult(result, not is_error(result))

    def hear(self, reply: str) -> None:
        """What the agent said to the customer: required outputs are looked for there."""
        self._scored = None
        self.replies.append(reply)

    def reward(self) -> EpisodeReward:
        if self._scored is None:
            detail = judge(self.task, self._state_matches, self.replies, self.rule)
            self._scored = EpisodeReward(detail.reward, self._earned(), detail)
        return self._scored

    def _state_matches(self) -> bool:
        now = state_hash(self.db) if self.changed else _fresh_hash(self.task.domain)
        return now == _expected(self.task)[0]

    def _earned(self) -> tuple[bool, ...]:
        refused = _expected(self.task)[1]
        return tuple(any(name == a.name and arguments == a.kwargs and (accepted or refused[i])
                         for name, arguments, accepted in self.made)
                     for i, a in enumerate(self.task.actions))

    def fork(self) -> "TauEnv":
        twin = copy.copy(self)
        twin.made, twin.replies = list(self.made), list(self.replies)
        self.shared = twin.shared = self.db is not None
        return twin

