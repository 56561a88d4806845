"""What JOSH trees are worth for training: SFT conversations, preference pairs, KTO rows.

- SFT: the golden path of every tree whose conversation reached `min_reward` (1.0 = the
  paper's "100% reward"), dropped when it contains an error (a rejected call, a malformed
  action, exhausted retries). Below 1, a partly successful tree gives its settled path up
  to the turn that earned its last sub-goal: what it did right, without what came after.
- Preference pairs ("juxtaposed outcomes"): wherever sibling turns share a prompt, a turn
  on a branch that earned reward is chosen and one on a branch that was cut is rejected.
  The prompt runs up to the first message where the two turns differ, so chosen and
  rejected are single agent messages; duplicates are dropped.
- KTO: each side of each pair as a labelled completion.
Rows are rendered in the agent's view (system prompt, tool results as APIRETURN turns) in
the conversational format trl's trainers read. Also: an importer for josh-train's shipped
Llama-3 JOSH trees, so they go through the same builders. Plain Python: no Prefect here.
"""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.types import Dialogue, JoshTree, Message, Outcome, PreferencePair, Scenario, Termination, TreeNode
from envs.domain import is_error
from envs.toolwoz.env import ToolWOZEnv
from envs.toolwoz.data import ToolWOZData, package_file
from envs.toolwoz.tools import is_rejected
from formats import react
from roleplay.rollout import RETRIES_EXHAUSTED

SHIPPED_TREES = "data/llama3-josh-toolwoz-for-KTO.zip"


def chat(messages: list[Message] | tuple[Message, ...]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def is_error_message(m: Message) -> bool:
    """A rejected call's result or the agent running out of retries: what JOSH keeps off an SFT path."""
    return (m.role == "tool" and is_error(m.content)) or m.content == RETRIES_EXHAUSTED


def has_error(messages: tuple[Message, ...]) -> bool:
    return any(map(is_error_message, messages))


def golden_path(nodes: tuple[TreeNode, ...]) -> tuple[Message, ...]:
    """The deepest golden turn's conversation; without one, the deepest turn of a branch that earned reward."""
    for flag in ("is_golden", "is_successful"):
        marked = [n for n in nodes if getattr(n, flag)]
        if marked:
            return max(marked, key=lambda n: len(n.messages)).messages
    return ()


View = Callable[[str, list[Message]], list[Message]]  # the agent format's view of a record


def sft_examples(trees: list[JoshTree], system: str, min_reward: float = 1.0,
                 view: View = react.agent_view) -> list[dict[str, Any]]:
    rows = []
    for tree in trees:
        path = golden_path(tree.nodes)
        if tree.dialogue.outcome.reward >= min_reward and path and not has_error(path):
            rows.append({"scenario_id": tree.dialogue.id, "task_id": tree.dialogue.scenario.task_id,
                         "reward": tree.dialogue.outcome.reward,
                         "messages": chat(view(system, list(path)))})
    return rows


def preference_pairs(tree: JoshTree) -> list[PreferencePair]:
    siblings: dict[str, list[TreeNode]] = defaultdict(list)
    for node in tree.nodes:
        siblings[_key(node.messages[: node.turn_start])].append(node)
    pairs, seen = [], set()
    for nodes in siblings.values():
        for good in (n for n in nodes if n.is_successful):
            for bad in (n for n in nodes if not n.is_successful):
                pair = _diverging(tree.dialogue, good, bad)
                key = pair and _key((*pair.prompt, pair.chosen, pair.rejected))
                if pair and key not in seen:
                    seen.add(key)
                    pairs.append(pair)
    return pairs


def _diverging(dialogue: Dialogue, good: TreeNode, bad: TreeNode) -> PreferencePair | None:
    common = 0
    while common < min(len(good.turn), len(bad.turn)) and _plain(good.turn[common]) == _plain(bad.turn[common]):
        common += 1
    if common == min(len(good.turn), len(bad.turn)):
        return None  # the same turn, or one a prefix of the other: nothing to prefer
    chosen, rejected = good.turn[common], bad.turn[common]
    if chosen.role != "assistant" or rejected.role != "assistant" or rejected.content == RETRIES_EXHAUSTED:
        return None
    return PreferencePair(scenario_id=dialogue.id, task_id=dialogue.scenario.task_id,
                          prompt=good.messages[: good.turn_start + common], chosen=chosen, rejected=rejected)


def _plain(m: Message) -> Message:
    """A message without call ids: twins making the same native call get different ids from the API."""
    if not m.tool_calls and m.tool_call_id is None:
        return m
    return m.model_copy(update={"tool_calls": tuple(c.model_copy(update={"id": None}) for c in m.tool_calls),
                                "tool_call_id": None})


def _key(messages) -> str:
    return json.dumps([_plain(m).model_dump(mode="json") for m in messages])


def dpo_rows(pairs: list[PreferencePair], system: str, view: View = react.agent_view) -> list[dict[str, Any]]:
    return [{"scenario_id": p.scenario_id, "task_id": p.task_id, "prompt": chat(view(system, list(p.prompt))),
             "chosen": chat(view("", [p.chosen])[1:]), "rejected": chat(view("", [p.rejected])[1:])} for p in pairs]


def kto_rows(pairs: list[PreferencePair], system: str, view: View = react.agent_view) -> list[dict[str, Any]]:
    rows, seen = [], set()
    for p in pairs:
        prompt = chat(view(system, list(p.prompt)))
        for completion, label in ((p.chosen, True), (p.rejected, False)):
            key = (_key(p.prompt), _key([completion]), label)
            if key not in seen:
                seen.add(key)
                rows.append({"scenario_id": p.scenario_id, "task_id": p.task_id, "prompt": prompt,
                             "completion": chat(view("", [completion])[1:]), "label": label})
    return rows


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
