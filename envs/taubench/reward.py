"""tau-bench's reward, as upstream computes it: a task with required outputs succeeds when every output
string appears in one of the agent's replies (case-insensitive, commas ignored); a task without outputs
succeeds when the agent left the database in the state that replaying the ground-truth actions on a
fresh copy leaves. (Upstream's calculate_reward, in the installed tau-bench-eval, checks one or the other, not
both; kept so scores compare with theirs.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envs.taubench.data import TauTask, fresh_database, state_hash
from envs.domain import is_error
from envs.taubench.tools import Tool, call

TERMINATE_TOOLS = ("transfer_to_human_agents",)  # ends the episode; not replayed


@dataclass(frozen=True)
class TauReward:
    reward: float
    state_matches: bool | None = None  # None when the task is judged on its outputs
    outputs_found: dict[str, bool] = field(default_factory=dict)


def ground_truth(task: TauTask, tools: dict[str, Tool]) -> tuple[str, tuple[bool, ...]]:
    """The ground-truth actions replayed on a fresh copy: the database's hash after them, and which of them the
    tools refused (some ground truths include a call that fails, and the expected state is the one without it)."""
    db, refused = fresh_database(task.domain), []
    for action in task.actions:
        result = "" if action.name in TERMINATE_TOOLS else call(tools, db, action.name, dict(action.kwargs))
        refused.append(is_error(result))
    return state_hash(db), tuple(refused)


def outputs_said(task: TauTask, replies: list[str]) -> TauReward:
    """Every required output in some reply (case-insensitive, commas ignored)."""
    said = [reply.lower().replace(",", "") for reply in replies]
    found = {output: any(output.lower() in reply for reply in said) for output in task.outputs}
    return TauReward(float(all(found.values())), outputs_found=found)


def reward(task: TauTask, db: dict[str, Any], replies: list[str], tools: dict[str, Tool]) -> TauReward:
    """1.0 or 0.0 for an episode that left `db` behind and said `replies` to the customer."""
    if task.outputs:
        return outputs_said(task, replies)
    matches = state_hash(db) == ground_truth(task, tools)[0]
    return TauReward(float(matches), state_matches=matches)
