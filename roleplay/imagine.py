"""The imagination engine (Hong, Levine, Dragan 2023): dialogues for a task from its description alone.

1. reasoning: a model turns the shared persona draws into people with a stake in this task;
2. imagination: per persona, a full dialogue in which the agent succeeds, and one in which it
   fails, opening with the same user message so the two can be juxtaposed;
3. critique and revise: the model checks each dialogue against the task's criteria and the
   outcome it should show, then rewrites it (the critique is kept with the result).
Imagined successes become SFT rows; a success and a failure of the same persona become a
preference pair at the first agent message where they differ (`roleplay/harvest.py: diverging_pair`, as JOSH
siblings are). Plain Python: no Prefect here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from core.config import SamplingConfig
from core.types import Dialogue, Message, Outcome, Persona, Scenario, Termination
from models.base import ChatModel

Target = Literal["success", "failure"]
_TURN = re.compile(r"^\s*\**\s*(user|customer|client|agent|assistant)\s*\**\s*:\s*(.*)$", re.IGNORECASE)
_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s*(.+)$")
OUTCOMES = {"success": "the agent fully succeeds: the user's need is met", "failure": "the agent fails: the user's need is not met"}


@dataclass(frozen=True)
class Imagined:
    """One imagined dialogue through the three steps: the draft, what the critique said, the revision."""

    persona: Persona
    target: Target
    draft: tuple[Message, ...]
    critique: str
    messages: tuple[Message, ...]  # the revision (the draft when revising gave no parsable dialogue)


def agent_system(task: str) -> str:
    """The agent's system prompt in the training rows: the task is all it is told."""
    return f"You are a helpful agent. Your task: {task}\nSpeak only as the agent, one message at a time."


def persona_prompt(task: str, drawn: Sequence[Persona]) -> list[Message]:
    people = "\n".join(f"{i}. {p.text}" for i, p in enumerate(drawn, 1))
    return [Message(role="user", content=(
        f"Task of an AI agent: {task}\nHere are {len(drawn)} people:\n{people}\n"
        "For each person, write one line starting with their number: who they are in this task, what they want "
        "from the agent and what makes them hard or easy to help. Make the people as different as you can."))]


def task_personas(drawn: Sequence[Persona], reply: str) -> list[Persona]:
    """Each drawn persona with its task-specific line appended; a persona the reply left out keeps its text."""
    lines = {int(m.group(1)): m.group(2).strip() for m in map(_NUMBERED.match, reply.splitlines()) if m}
    return [p.model_copy(update={"text": f"{p.text} {lines[i]}"}) if lines.get(i) else p for i, p in enumerate(drawn, 1)]


def imagine_prompt(task: str, persona: Persona, target: Target, opening: str | None = None) -> list[Message]:
    start = f'\nThe user opens with exactly: "{opening}"' if opening else ""
    return [Message(role="user", content=(
        f"Imagine a complete conversation between a user and an AI agent.\nThe agent's task: {task}\n"
        f"The user: {persona.text}\nOutcome: {OUTCOMES[target]}.{start}\n"
        "Write 4 to 10 turns, each on its own line starting with 'User:' or 'Agent:', and nothing else."))]


def critique_prompt(task: str, criteria: Sequence[str], target: Target, dialogue: Sequence[Message]) -> list[Message]:
    listed = "\n".join(f"- {c}" for c in criteria)
    return [Message(role="user", content=(
        f"The agent's task: {task}\nThis conversation should show that {OUTCOMES[target]}.\n{render(dialogue)}\n"
        f"Check it against these criteria:\n{listed}\nSay briefly what is wrong or unrealistic and how to fix it."))]


def revise_prompt(task: str, target: Target, dialogue: Sequence[Message], critique: str) -> list[Message]:
    return [Message(role="user", content=(
        f"The agent's task: {task}\nThis conversation should show that {OUTCOMES[target]}.\n{render(dialogue)}\n"
        f"A reviewer said: {critique}\nRewrite the conversation to fix that, keeping its first user message. "
        "Each turn on its own line starting with 'User:' or 'Agent:', and nothing else."))]


def render(messages: Sequence[Message]) -> str:
    return "\n".join(f"{'User' if m.role == 'user' else 'Agent'}: {m.content}" for m in messages)


def parse_dialogue(text: str) -> tuple[Message, ...]:
    """`User:` / `Agent:` lines as messages (unlabelled lines continue the turn before); () without both speakers."""
    turns: list[list[str]] = []
    for line in text.splitlines():
        match = _TURN.match(line)
        if match:
            role = "user" if match.group(1).lower() in ("user", "customer", "client") else "assistant"
            turns.append([role, match.group(2).strip()])
        elif turns and line.strip():
            turns[-1][1] = f"{turns[-1][1]} {line.strip()}".strip()
    messages = tuple(Message(role=r, content=c) for r, c in turns if c)
    return messages if {m.role for m in messages} == {"user", "assistant"} else ()


def with_opening(messages: tuple[Message, ...], opening: Message | None) -> tuple[Message, ...]:
    """The dialogue starting with the given user message (a failure shares its success's opening)."""
    if opening is None or not messages:
        return messages
    rest = messages[1:] if messages[0].role == "user" else messages
    return (opening, *rest)


def imagine(model: ChatModel, task: str, criteria: Sequence[str], personas: Sequence[Persona], sampling: SamplingConfig,
            critique: bool = True) -> list[Imagined]:
    """A success and a failure per persona, each critiqued and revised; every step is one batch over personas."""
    out: list[Imagined] = []
    openings: list[Message | None] = [None] * len(personas)
    for target in ("success", "failure"):
        prompts = [imagine_prompt(task, p, target, o.content if o else None) for p, o in zip(personas, openings)]
        drafts = [with_opening(parse_dialogue(g[0].text), o) for g, o in zip(model.generate(prompts, sampling), openings)]
        notes, revised = [""] * len(drafts), list(drafts)
        if critique:
            notes = [g[0].text.strip() for g in model.generate(
                [critique_prompt(task, criteria, target, d) for d in drafts], sampling)]
            rewrites = model.generate([revise_prompt(task, target, d, n) for d, n in zip(drafts, notes)], sampling)
            revised = [with_opening(parse_dialogue(g[0].text), o) or d for g, o, d in zip(rewrites, openings, drafts)]
        out += [Imagined(p, target, d, n, r) for p, d, n, r in zip(personas, drafts, notes, revised)]
        if target == "success":
            openings = [r[0] if r and r[0].role == "user" else None for r in revised]
    return out


def as_dialogue(item: Imagined, task_id: str, model_spec: str) -> Dialogue:
    """An imagined dialogue as the pipeline's record: reward 1 for an imagined success, 0 for a failure."""
    won = item.target == "success"
    scenario = Scenario(domain="imagined", task_id=f"{task_id}:{item.target}", instruction=OUTCOMES[item.target],
                        persona=item.persona)
    outcome = Outcome(reward=float(won), success=won, termination=Termination.user_ended if item.messages else
                      Termination.empty_output, turns=sum(m.role == "assistant" for m in item.messages))
    return Dialogue(scenario=scenario, messages=item.messages, outcome=outcome, agent_model=model_spec,
                    user_model=model_spec)
