"""ToolWOZ's tools: validate a call, then search or book against the task's database.

Errors are values the agent sees (strings starting with `ERROR:`), never exceptions. Search
is adversarial, as in JOSH: it returns [] or exactly one row, and when the agent leaves
out some of the user's constraints it returns a row that violates the goal if one exists,
so only a complete query reliably finds the right entity.
"""

from __future__ import annotations

from typing import Any

from core.types import ToolCall
from envs.domain import is_error
from envs.toolwoz.data import ToolWOZData, ToolWOZTask, is_empty, query, unique_id_key

INVALID_PARAMS = "ERROR: INVALID API CALL! YOUR REQUEST CONTAINED PARAMETERS THAT ARE NOT ALLOWED FOR THIS API or AN IMPROPER API NAME!"
INVALID_VALUES = "ERROR: INVALID API CALL! LISTS AND DICTS ARE NOT ALLOWED AS VALUES!"

ToolResult = list[dict[str, Any]] | dict[str, Any] | str


def is_rejected(result: ToolResult) -> bool:
    """Rejected calls come back as `ERROR: ...` strings; results the tools took are rows."""
    return isinstance(result, str) and is_error(result)


def normalise(value: Any) -> Any:
    return value.lower().replace("'", "") if isinstance(value, str) else value


def is_subset(sub: dict[str, Any], main: dict[str, Any]) -> bool:
    """Every non-empty constraint of `sub` holds in `main` (case and apostrophes ignored)."""
    cleaned = {k: normalise(v) for k, v in main.items() if not is_empty(v)}
    return all(k in cleaned and cleaned[k] == normalise(v) for k, v in sub.items() if not is_empty(v))


def validation_error(data: ToolWOZData, call: ToolCall) -> str | None:
    """Why the tools would reject this call (unknown API or parameter, non-scalar value), or None."""
    if call.name not in data.api_params or not set(call.arguments) <= set(data.api_params[call.name]):
        return INVALID_PARAMS
    if any(isinstance(v, (list, dict)) for v in call.arguments.values()):
        return INVALID_VALUES
    return None


def same_call(a: ToolCall, b: ToolCall) -> bool:
    """Same API and the same non-empty arguments, ignoring case and apostrophes."""
    return a.name == b.name and is_subset(a.arguments, b.arguments) and is_subset(b.arguments, a.arguments)


def execute(data: ToolWOZData, task: ToolWOZTask, call: ToolCall) -> ToolResult:
    """Run one tool call for `task`; returns rows (search), a booking dict, or an error string."""
    if error := validation_error(data, call):
        return error
    action, domain = call.name.split("_")
    args = {k: normalise(v) for k, v in call.arguments.items()}
    if action == "search":
        rows = query(data.databases[domain], args)
        if not rows or domain not in task.goals:
            return rows[:1]
        return _adversarial_row(task, domain, args, rows)
    goal = task.goals.get(domain)
    if goal is None or goal.book is None or not is_subset(goal.book, args):
        return {"success": False, "return": {}}
    return {"success": True, "return": goal.booked}


def _adversarial_row(task: ToolWOZTask, domain: str, args: dict[str, Any], rows: list[dict]) -> list[dict]:
    """One row: the booked entity for a complete query, a goal-violating row for a partial one."""
    goal = task.goals[domain]
    wanted = goal.search or {}
    booked_id = goal.book[unique_id_key(domain)] if goal.book else None
    correct = next((r for r in reversed(rows) if booked_id and r[unique_id_key(domain)] == booked_id), None)
    wrong = next((r for r in reversed(rows) if not is_subset(wanted, r)), None)
    if is_subset(wanted, args):
        if booked_id:
            return [correct or wrong] if (correct or wrong) else []
    elif is_subset(args, wanted):
        if wrong:
            return [wrong]
        if booked_id and correct:
            return [correct]
    return rows[:1]
