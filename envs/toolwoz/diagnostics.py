"""What a ToolWOZ dialogue shows about the agent beyond its reward: does it copy what it hears, which calls are right.

Read off saved dialogues (an evaluation run's), so they cost no model call. Plain Python.
"""

from __future__ import annotations

from collections import defaultdict

from core.types import Dialogue
from envs.toolwoz.agenda import conveyed, goal_values
from envs.toolwoz.data import ToolWOZData
from envs.toolwoz.env import ToolWOZEnv
from envs.toolwoz.tools import normalise


def copied_values(data: ToolWOZData, dialogue: Dialogue) -> tuple[int, int]:
    """(values copied, values said): of the goal values the customer said, how many the agent's next call that
    could carry one (an API of the value's domain taking its parameter) carried as said; no such call is a miss."""
    values, pending, copied, said = goal_values(data.tasks[dialogue.scenario.task_id]), [], 0, 0
    for m in dialogue.messages:
        if m.role == "user":
            heard = [v for v in values if conveyed(v[1], v[2], m.content)]
            values = [v for v in values if v not in heard]
            pending += heard
            said += len(heard)
        for call in m.tool_calls:
            domain, params = call.name.partition("_")[2], data.api_params.get(call.name, [])
            carried = [v for v in pending if v[0] == domain and v[1] in params]
            copied += sum(normalise(call.arguments.get(slot, "")) == normalise(value) for _, slot, value in carried)
            pending = [v for v in pending if v not in carried]
    return copied, said


def copy_rate(data: ToolWOZData, dialogues: list[Dialogue]) -> float:
    counts = [copied_values(data, d) for d in dialogues]
    return sum(c for c, _ in counts) / max(1, sum(s for _, s in counts))


def api_accuracy(data: ToolWOZData, dialogues: list[Dialogue]) -> dict[str, float]:
    """Per API, the share of its ground-truth calls the dialogues earned (their calls replayed in a fresh env)."""
    earned = defaultdict(list)
    for d in dialogues:
        task = data.tasks[d.scenario.task_id]
        env = ToolWOZEnv(data, task)
        for m in d.messages:
            for call in m.tool_calls:
                env.step(call)
        for call, ok in zip(task.ground_truth_calls(), env.reward().earned):
            earned[call.name].append(ok)
    return {name: sum(v) / len(v) for name, v in sorted(earned.items())}
