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
the conversational format trl's trainers read (josh-train's shipped trees, imported by
`roleplay/shipped_trees.py`, go through the same builders). Plain Python: no Prefect here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from core.types import Dialogue, JoshTree, Message, PreferencePair, TreeNode
from envs.domain import is_error
from formats import react
from roleplay.rollout import RETRIES_EXHAUSTED



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
                pair = diverging_pair(tree.dialogue, good.messages[: good.turn_start], good.turn, bad.turn)
                key = pair and _key((*pair.prompt, pair.chosen, pair.rejected))
                if pair and key not in seen:
                    seen.add(key)
                    pairs.append(pair)
    return pairs


def diverging_pair(dialogue: Dialogue, prompt: Sequence[Message], good: Sequence[Message],
                   bad: Sequence[Message]) -> PreferencePair | None:
    """`good` chosen over `bad` (both following `prompt`) at the first message where they differ, when both are
    agent messages: a JOSH turn and its failed sibling's, or an imagined success and failure."""
    common = 0
    while common < min(len(good), len(bad)) and _plain(good[common]) == _plain(bad[common]):
        common += 1
    if common == min(len(good), len(bad)):
        return None  # the same messages, or one a prefix of the other: nothing to prefer
    chosen, rejected = good[common], bad[common]
    if chosen.role != "assistant" or rejected.role != "assistant" or rejected.content == RETRIES_EXHAUSTED:
        return None
    return PreferencePair(scenario_id=dialogue.id, task_id=dialogue.scenario.task_id,
                          prompt=[*prompt, *good[:common]], chosen=chosen, rejected=rejected)


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
