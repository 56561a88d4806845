"""josh-train's shipped Llama-3 JOSH trees (ToolWOZ dialogues) as `JoshTree`s, each replayed here for its reward."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from core.types import Dialogue, JoshTree, Message, Outcome, Scenario, Termination, TreeNode
from envs.toolwoz.data import ToolWOZData, package_file
from envs.toolwoz.env import ToolWOZEnv
from envs.toolwoz.tools import is_rejected
from formats import react
from roleplay.harvest import golden_path

SHIPPED_TREES = "data/llama3-josh-toolwoz-for-KTO.zip"


def import_shipped_trees(data: ToolWOZData, path: Path | None = None) -> list[JoshTree]:
    """josh-train's Llama-3 JOSH trees as `JoshTree`s; each tree's reward is recomputed by replaying its calls here."""
    trees = []
    with zipfile.ZipFile(path or package_file(SHIPPED_TREES)) as z:
        for name in sorted(n for n in z.namelist() if n.endswith(".json")):
            raw = json.loads(z.read(name))
            task_id = Path(name).name.removeprefix("sim_")
            nodes = tuple(_shipped_node(messages, ok, golden) for messages, ok, golden in raw["training_paths"] if messages)
            trees.append(_replayed(data, task_id, nodes))
    return trees


def _shipped_node(messages: list[dict[str, str]], successful: bool, golden: bool) -> TreeNode:
    record = []
    for m in messages:
        if m["role"] == "user" and m["content"].startswith(react.APIRETURN):
            record.append(Message(role="tool", content=m["content"].removeprefix(react.APIRETURN).strip()))
        elif m["role"] == "assistant":
            call = react.parse_action(m["content"]).call
            record.append(Message(role="assistant", content=m["content"], tool_calls=(call,) if call else ()))
        else:
            record.append(Message(role=m["role"], content=m["content"]))
    start = max((i + 1 for i, m in enumerate(record) if m.role == "user"), default=0)
    return TreeNode(messages=tuple(record), turn_start=start, is_successful=successful, is_golden=golden)


def _replayed(data: ToolWOZData, task_id: str, nodes: tuple[TreeNode, ...]) -> JoshTree:
    task = data.tasks[task_id]
    messages = golden_path(nodes)
    env = ToolWOZEnv(data, task)
    for m in messages:
        for call in m.tool_calls:
            env.step(call)
    result = env.reward()
    outcome = Outcome(reward=result.reward, success=result.success, termination=Termination.all_rewards_earned
                      if result.success else Termination.turn_cap, turns=sum(m.role != "tool" for m in messages),
                      api_calls=len(env.records), invalid_calls=sum(is_rejected(r.result) for r in env.records))
    scenario = Scenario(domain="toolwoz", task_id=task_id, instruction=task.instruction)
    dialogue = Dialogue(scenario=scenario, messages=messages, outcome=outcome, agent_model="josh-train:llama3",
                        user_model="josh-train:user-simulator")
    return JoshTree(dialogue=dialogue, nodes=nodes)
