"""LLM judges, for what no rule can check.

Persona adherence: does the simulated user talk like the persona it plays? The judge sees the persona and the user's
side of the conversation and answers with a score from 1 to 5, read as (score - 1) / 4. An answer without a score is
None: the column stays empty for that row and its expectation skips it, rather than guessing.

Natural-language assertions (τ²-bench's NL_ASSERTION reward basis): does the agent satisfy each expected outcome? The
judge sees the whole conversation and answers in JSON, one verdict per assertion, as τ²'s own judge does. An answer
that is not that JSON, or leaves an assertion out, is no verdict: the dialogue stays not judged, never passed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

from core.config import SamplingConfig
from core.types import Dialogue, Message, Outcome
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


VERDICT_SAMPLING = SamplingConfig(max_new_tokens=512)  # greedy; room for a short reasoning per assertion
_ASSERTIONS = """You will be given a list of expected outcomes and a conversation between an agent and a customer.
Evaluate whether the agent satisfies each expected outcome, grading each one individually.

Answer with a JSON object only:
{{"results": [{{"expectedOutcome": "<the outcome graded>", "reasoning": "<short>", "metExpectation": true or false}}]}}

conversation:
{conversation}

expectedOutcomes:
{assertions}"""


def assertions_prompt(d: Dialogue, assertions: Sequence[str]) -> list[Message]:
    conversation = "\n".join(f"{m.role}: {m.content}" for m in d.messages if m.role != "system")
    return [Message(role="user", content=_ASSERTIONS.format(conversation=conversation,
                                                          assertions=json.dumps(list(assertions))))]


def read_verdict(text: str, assertions: Sequence[str]) -> bool | None:
    """True if every assertion is met, False if one is not; None if the answer is not a verdict on each."""
    start, end = text.find("{"), text.rfind("}")
    try:
        results = json.loads(text[start : end + 1])["results"]
        met = [r["metExpectation"] for r in results]
    except (ValueError, KeyError, TypeError):
        return None
    if len(met) != len(assertions) or not all(isinstance(m, bool) for m in met):
        return None
    return all(met)


def with_verdict(outcome: Outcome, met: bool) -> Outcome:
    """The outcome once judged: the other parts of its reward basis times the judge's verdict."""
    basis = {**outcome.reward_basis, "NL_ASSERTION": float(met)}
    reward = math.prod(basis.values())
    return outcome.model_copy(update={"reward": reward, "success": reward == 1.0, "reward_basis": basis,
                                      "judged": True})


def judge_assertions(dialogues: Sequence[Dialogue], assertions: Sequence[Sequence[str]], judge: ChatModel,
                     sampling: SamplingConfig = VERDICT_SAMPLING) -> list[Dialogue]:
    """Each not-judged dialogue with assertions judged; the others, and any the judge gave no verdict on, as they were."""
    pending = [i for i, d in enumerate(dialogues) if not d.outcome.judged and assertions[i]]
    judged = list(dialogues)
    prompts = [assertions_prompt(dialogues[i], assertions[i]) for i in pending]
    for i, gens in zip(pending, judge.generate(prompts, sampling) if prompts else []):
        met = read_verdict(gens[0].text, assertions[i])
        if met is not None:
            judged[i] = dialogues[i].model_copy(update={"outcome": with_verdict(dialogues[i].outcome, met)})
    return judged
