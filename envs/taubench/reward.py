"""tau-bench's reward, one implementation with two rules.

`upstream` is sierra-research/tau-bench's rule today (since commit 718ffa1, November 2024: "the reward should be
zero if the database state is incorrect"): 1.0 when the agent left the database in the state that replaying
the ground-truth actions on a fresh copy leaves AND said every required output (case-insensitive, commas
ignored). `2024` is the rule before it, which josh-train's vendored copy and the JOSH paper's figures use: a task
with required outputs is judged on them alone, any other on the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from envs.domain import is_error
from envs.taubench.data import TauTask, fresh_database, state_hash
from envs.taubench.tools import Tool, call

TERMINATE_TOOLS = ("transfer_to_human_agents",)  # ends the episode; not replayed
TauRule = Literal["upstream", "2024"]
RULES: dict[str, str] = {
    "upstream": "tau-bench's rule today: the database state and every required output",
    "2024": "tau-bench's 2024 rule (josh-train, the JOSH paper): the outputs alone when a task has any",
}


@dataclass(frozen=True)
class TauReward:
    reward: float
    rule: TauRule
    state_matches: bool | None = None  # None when the rule did not look at the database
    outputs_found: dict[str, bool] = field(default_factory=dict)


def ground_truth(task: TauTask, tools: dict[str, Tool]) -> tuple[str, tuple[bool, ...]]:
    """The ground-truth actions replayed on a fresh copy: the database's hash after them, and which of them the
    tools refused (some ground truths include a call that fails, and the expected state is the one without it)."""
    db, refused = fresh_database(task.domain), []
    for action in task.actions:
        result = "" if action.name in TERMINATE_TOOLS else call(tools, db, action.name, dict(action.kwargs))
        refused.append(is_error(result))
    return state_hash(db), tuple(refused)


def judge(task: TauTask, state_matches: Callable[[], bool], replies: list[str], rule: TauRule) -> TauReward:
    """1.0 or 0.0 for an episode that said `replies` to the customer; `state_matches` compares its database with
    the ground truth's, asked only when the rule needs it."""
    said = [reply.lower().replace(",", "") for reply in replies]
    found = {output: any(output.lower() in reply for reply in said) for output in task.outputs}
    if rule == "2024" and task.outputs:
        return TauReward(float(all(found.values())), rule, outputs_found=found)
    matches = state_matches()
    return TauReward(float(matches and all(found.values())), rule, matches, found)
