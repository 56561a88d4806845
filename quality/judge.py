"""An LLM judge for persona adherence: does the simulated user talk like the persona it plays?

The judge sees the persona and the user's side of the conversation and answers with a score
from 1 to 5, read as (score - 1) / 4. An answer without a score is None: the column stays
empty for that row and its expectation skips it, rather than guessing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.config import SamplingConfig
from core.types import Dialogue, Message
from models.base import ChatModel

_PROMPT = """You judge a simulated customer in a conversation with a travel agent.
The customer was asked to play this persona:
{persona}

What the customer said, turn by turn:
{turns}

How well does the customer stay in this persona (vocabulary, tone, level of detail), and never
talk like an AI or an agent? Answer with one digit from 1 (not at all) to 5 (fully)."""
_SCORE = re.compile(r"[1-5]")


def judge_prompt(d: Dialogue) -> list[Message]:
    turns = "\n".join(f"- {m.content}" for m in d.messages if m.role == "user")
    return [Message(role="user", content=_PROMPT.format(persona=d.scenario.persona.text, turns=turns))]


def read_score(text: str) -> float | None:
    match = _SCORE.search(text)
    return (int(match.group()) - 1) / 4 if match else None


def persona_scores(dialogues: Sequence[Dialogue], judge: ChatModel, sampling: SamplingConfig) -> list[float | None]:
    """One score per dialogue (None for a dialogue without a persona or an answer without a score)."""
    judged = [i for i, d in enumerate(dialogues) if d.scenario.persona is not None]
    scores: list[float | None] = [None] * len(dialogues)
    for i, gens in zip(judged, judge.generate([judge_prompt(dialogues[i]) for i in judged], sampling)):
        scores[i] = read_score(gens[0].text)
    return scores
