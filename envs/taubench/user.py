"""The tau-bench customer: a model playing the task's instruction, which hangs up with `###STOP###`, as upstream's;
or, offline, the instruction's agenda: its sentences told one per turn in the first person, then `###STOP###`.
"""

from __future__ import annotations

import re

from core.types import Message, Scenario
from formats import user_sim

STOP = "###STOP###"

_PROMPT = """You are a customer talking to a customer service agent.

Instruction: {instruction}

Rules:
- Write one message at a time, as the customer would.
- Do not give away the whole instruction at once: give only what the current step needs.
- Do not invent information the instruction does not give (an order id, an address): say you do not have it.
- Stick to the personality in the instruction, and say things in your own words.
- When the instruction's goal is met, or cannot be met, write {stop} alone as your message to end the conversation."""


def system_prompt(scenario: Scenario) -> str:
    prompt = _PROMPT.format(instruction=scenario.instruction, stop=STOP)
    return f"{scenario.persona.text}\n{prompt}" if scenario.persona is not None else prompt


def user_view(scenario: Scenario, visible: list[Message]) -> list[Message]:
    """The conversation from the customer's side: the simulator's 'assistant' turns are the customer's."""
    return [Message(role="system", content=system_prompt(scenario)), *user_sim.customer_side(visible)]


def wants_to_end(text: str) -> bool:
    return STOP in text


_TRAITS = re.compile(r"You are [a-z ,\-']+\.")  # lowercase words only: a personality, not a name or an id
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z#])")
_FIRST_PERSON = [(re.compile(rf"\b{you}\b", re.IGNORECASE), me) for you, me in (
    ("you name", "my name"), ("you are", "I am"), ("you were", "I was"), ("you have", "I have"), ("yourself", "myself"),
    ("yours", "mine"), ("your", "my"), ("you", "I"))]


def agenda(instruction: str) -> list[str]:
    """What the customer has to say, in order: the instruction's sentences in the first person, the ones that
    only describe its personality ("You are patient, confident.") left out."""
    sentences = [s.strip() for s in _SENTENCE_END.split(instruction.strip()) if s.strip()]
    said = []
    for sentence in sentences:
        if _TRAITS.fullmatch(sentence):
            continue
        for pattern, replacement in _FIRST_PERSON:
            sentence = pattern.sub(replacement, sentence)
        said.append(sentence[0].upper() + sentence[1:])
    return said


def scripted_turn(instruction: str, turns_taken: int) -> str:
    """The offline customer's next message: the next agenda sentence, then the stop marker."""
    steps = agenda(instruction)
    return steps[turns_taken] if turns_taken < len(steps) else STOP
