"""Per-dialogue quality metrics, one row per dialogue: the table the expectation suites filter.

Each column is something a filter from the source methods reads: outcome and errors (JOSH),
workflow completion (Self-talk), prompt shape, loops and self-replies (LLM Roleplay),
repetition and diversity, how much of its goal the user got across, persona adherence, and
near-duplicate clusters across the whole batch. Plain Python and pandas: no Prefect, no GX.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from core.types import Dialogue, Message, Termination
from envs.registry import benchmark_domain
from formats import react, stops
from formats.user_sim import END_MARKER
from quality.near_duplicates import cluster_near_duplicates
from roleplay.harvest import is_error_message

ENDED_PROPERLY = {Termination.user_ended, Termination.all_rewards_earned, Termination.conversation_end,
                  Termination.transferred}
MAX_REPEAT_N = 10  # LLM Roleplay's non-coherence check: n-grams of 2..10 words
_LABEL = re.compile(r"^\s*(user|customer|agent|assistant|system)\s*:", re.IGNORECASE | re.MULTILINE)
_OUT_OF_CHARACTER = re.compile(r"\b(as an ai|language model|i am an? (ai|assistant|agent|chatbot))\b", re.IGNORECASE)

GoalCheck = Callable[[Dialogue], "tuple[int, int] | None"]  # (goal values the user said, goal values there are)


@dataclass(frozen=True)
class Utterance:
    role: str  # "user" or "assistant"
    text: str  # what was said: the user's words, the agent's SPEAK text


def end_markers(d: Dialogue) -> tuple[str, ...]:
    """What the customer writes to hang up: the goal prompt's marker, and its domain's own."""
    found = benchmark_domain(d.scenario.domain)
    return (END_MARKER, found.stop_marker) if found else (END_MARKER,)


def utterances(messages: Sequence[Message], plain: bool = False, markers: Sequence[str] = (END_MARKER,)) -> list[Utterance]:
    """The spoken turns: user messages without the end markers, agent SPEAK texts (calls and plans are not speech);
    `plain`: agent messages are speech as they stand (workflow domains have no ReAct format). In the
    function-calling format an agent message that no tool result follows is speech as it stands."""
    out = []
    for i, m in enumerate(messages):
        if m.role == "user":
            out.append(Utterance("user", functools.reduce(lambda text, marker: text.replace(marker, ""), markers,
                                                          m.content).strip()))
        elif m.role == "assistant" and not m.tool_calls:
            answered = i + 1 < len(messages) and messages[i + 1].role == "tool"  # a call or a malformed action
            speech = m.content.strip() if plain else react.parse_action(m.content).speak
            if speech is None and not answered and not is_error_message(m):
                speech = m.content.strip()
            if speech:
                out.append(Utterance("assistant", speech))
    return out


def max_repeat_run(text: str, max_n: int = MAX_REPEAT_N) -> int:
    """How many times in a row the most repeated word n-gram (2 <= n <= max_n) occurs; 1 = no loop.

    A run of k back-to-back copies of an n-gram is a stretch of (k-1)*n positions where each word
    equals the word n places later, so one pass per n finds it.
    """
    words = text.lower().split()
    if len(set(words)) == len(words):
        return 1  # no word twice, no n-gram twice
    best = 1
    for n in range(2, min(max_n, len(words) // 2) + 1):
        streak = longest = 0
        for same in map(operator.eq, words, words[n:]):
            streak = streak + 1 if same else 0
            if streak > longest:
                longest = streak
        best = max(best, 1 + longest // n)
    return best


def distinct(words: list[str], n: int) -> float | None:
    grams = list(zip(*(words[i:] for i in range(n))))
    return len(set(grams)) / len(grams) if grams else None


def repeated_rate(turns: list[Utterance]) -> float | None:
    """Share of utterances that repeat, word for word, an earlier one by the same speaker."""
    seen, repeats = set(), 0
    for u in turns:
        key = (u.role, " ".join(u.text.lower().split()))
        repeats += key in seen
        seen.add(key)
    return repeats / len(turns) if turns else None


def prompt_shape(messages: Sequence[Message]) -> dict[str, int]:
    """LLM Roleplay's counters for the simulated user's turns.

    no_prompt: a user turn with nothing said (a closing turn with only the end marker is fine);
    multiple_prompts: a user turn scripting several turns of its own ("User: ... User: ...");
    self_replies: the user answering itself (two user turns in a row, or writing the agent's lines);
    role_flips: the user writing agent actions or tool results.
    """
    counts = {"no_prompt": 0, "multiple_prompts": 0, "self_replies": 0, "role_flips": 0}
    previous = None
    for m in messages:
        if m.role == "tool":
            continue
        if m.role == "user":
            labels = [x.lower() for x in _LABEL.findall(m.content)]
            said = m.content.replace(END_MARKER, "").strip()
            counts["no_prompt"] += not said and END_MARKER not in m.content
            counts["multiple_prompts"] += sum(x in ("user", "customer") for x in labels) > 1
            counts["self_replies"] += previous == "user" or any(x in ("agent", "assistant", "system") for x in labels)
            counts["role_flips"] += stops.is_role_flip(m.content)
        previous = m.role
    return counts


def persona_adherence(d: Dialogue) -> float | None:
    """Cheap proxy: share of the user's turns that stay in the customer's character (said something,
    no agent actions, no 'as an AI'). None without a persona. An LLM judge replaces it when configured."""
    if d.scenario.persona is None:
        return None
    turns = [m.content for m in d.messages if m.role == "user"]
    kept = [t for t in turns if t.replace(END_MARKER, "").strip() and not stops.is_role_flip(t)
            and not _OUT_OF_CHARACTER.search(t)]
    return len(kept) / len(turns) if turns else None


PLAIN_DOMAINS = {"workflow", "imagined"}  # agents that only talk: their messages are speech, no ReAct format


def is_plain(d: Dialogue) -> bool:
    return d.scenario.domain in PLAIN_DOMAINS


def character_consistency(d: Dialogue) -> float | None:
    """Cheap proxy for Self-talk's character consistency: share of the agent's utterances that stay the agent
    (no role labels, no 'as an AI', not a copy of the client's last words). None when the agent said nothing."""
    turns = utterances(d.messages, is_plain(d), end_markers(d))
    agent = [(i, u.text) for i, u in enumerate(turns) if u.role == "assistant"]
    copied = {i for i, text in agent if i and turns[i - 1].role == "user" and text.lower() == turns[i - 1].text.lower()}
    kept = [i for i, text in agent if text and not _LABEL.search(text) and not _OUT_OF_CHARACTER.search(text) and i not in copied]
    return len(kept) / len(agent) if agent else None


def dialogue_row(d: Dialogue, turns: list[Utterance], goal: GoalCheck | None = None, judged: float | None = None) -> dict:
    """The row of one dialogue (`turns`: its utterances); `judged` is an LLM judge's persona score, replacing the proxy."""
    words = [w for u in turns for w in u.text.lower().split()]
    o = d.outcome
    conveyed = goal(d) if goal else None
    return {
        "id": d.id,
        "domain": d.scenario.domain,
        "task_id": d.scenario.task_id,
        "persona_id": d.scenario.persona.id if d.scenario.persona else None,
        "turns": o.turns,
        "termination": o.termination.value,
        "ended_properly": o.termination in ENDED_PROPERLY,
        "reward": o.reward,
        "success": o.success,
        "api_calls": o.api_calls,
        "valid_call_rate": (o.api_calls - o.invalid_calls) / o.api_calls if o.api_calls else None,
        "errors_on_path": sum(map(is_error_message, d.messages)),
        "max_repeat_run": max((max_repeat_run(u.text) for u in turns), default=1),
        "repeated_utterance_rate": repeated_rate(turns),
        **prompt_shape(d.messages),
        "distinct_1": distinct(words, 1),
        "distinct_2": distinct(words, 2),
        "mean_utterance_words": len(words) / len(turns) if turns else 0.0,
        "goal_values_conveyed": conveyed[0] / conveyed[1] if conveyed and conveyed[1] else None,
        "persona_adherence": persona_adherence(d) if judged is None else judged,
        "character_consistency": character_consistency(d),
        "workflow_steps": o.workflow_steps,  # workflow domains (Self-talk): steps the agent completed
        "workflow_depth": o.workflow_depth,  # ... / steps on the workflow's longest path
    }


def dialogue_table(dialogues: Sequence[Dialogue], goal: GoalCheck | None = None,
                   judged: Sequence[float | None] | None = None, near_duplicate_threshold: float = 0.8) -> pd.DataFrame:
    """One row per dialogue, plus batch columns: completion rank and near-duplicate clusters."""
    judged = judged or [None] * len(dialogues)
    turns = [utterances(d.messages, is_plain(d), end_markers(d)) for d in dialogues]
    table = pd.DataFrame([dialogue_row(d, t, goal, j) for d, t, j in zip(dialogues, turns, judged)],
                         columns=list(dialogue_row(_EMPTY, []).keys()))
    return with_batch_columns(table, [" ".join(u.text for u in t) for t in turns], near_duplicate_threshold)


def with_batch_columns(table: pd.DataFrame, texts: list[str], threshold: float) -> pd.DataFrame:
    """Columns that compare a dialogue with the rest of the batch.

    completion: workflow depth where there is a workflow, else reward (Self-talk's %-Subgoals ranks by it);
    completion_top_share: this row's place when the batch is sorted by completion, as a share of the batch
    (0.05 = top 5%; ties keep batch order, so a top-p filter keeps exactly p of the batch);
    near_duplicate_of: the id of the first dialogue of its near-duplicate cluster; cluster size; whether
    this row is a later copy (is_near_duplicate).
    """
    table = table.astype({"workflow_steps": "Int64", "workflow_depth": "Float64", "valid_call_rate": "Float64",
                          "repeated_utterance_rate": "Float64", "distinct_1": "Float64", "distinct_2": "Float64",
                          "goal_values_conveyed": "Float64", "persona_adherence": "Float64",
                          "character_consistency": "Float64"})
    completion = table["workflow_depth"].astype("float64").fillna(table["reward"].astype("float64"))
    table["completion"] = completion
    table["completion_top_share"] = completion.rank(method="first", ascending=False) / max(len(table), 1)
    clusters = cluster_near_duplicates(texts, threshold)
    ids = table["id"].tolist()
    table["near_duplicate_of"] = [ids[c] for c in clusters]
    table["near_duplicate_cluster_size"] = pd.Series(clusters).map(pd.Series(clusters).value_counts()).to_numpy()
    table["is_near_duplicate"] = [c != i for i, c in enumerate(clusters)]
    return table


def batch_summary(table: pd.DataFrame, kept: list[int], dialogues: Sequence[Dialogue]) -> dict[str, float]:
    """The one row the batch expectations read: how much was kept, how diverse and how unique it is.

    distinct_2 pools the word bigrams of every kept dialogue (diversity across the batch, not within
    one dialogue); largest_near_duplicate_cluster counts kept rows per cluster.
    """
    grams: list[tuple[str, str]] = []
    for i in kept:
        words = [w for u in utterances(dialogues[i].messages, is_plain(dialogues[i]), end_markers(dialogues[i]))
                 for w in u.text.lower().split()]
        grams += zip(words, words[1:])
    clusters = table["near_duplicate_of"].iloc[kept].value_counts()
    return {"rows": len(table), "kept": len(kept), "kept_share": len(kept) / len(table) if len(table) else 0.0,
            "distinct_2": len(set(grams)) / len(grams) if grams else 0.0,
            "duplicate_ids": int(len(table) - table["id"].nunique()),
            "largest_near_duplicate_cluster": int(clusters.max()) if len(clusters) else 0}


_EMPTY = Dialogue.model_validate({"scenario": {"domain": "", "task_id": "", "instruction": ""}, "messages": [],
                                  "outcome": {}})
