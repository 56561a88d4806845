"""The goal-conditioned user simulator: a model playing the customer, with the task's goal in its prompt.

The simulator sees the conversation from the customer's side (the agent's words as `user`
turns, its own as `assistant` turns) and hangs up by writing END_CONVERSATION.
"""

from __future__ import annotations

from core.types import Message, Scenario

END_MARKER = "END_CONVERSATION"

_PROMPT = """You are a customer talking to {agent}. Your goals:
{goal}
Pursue the goals in order and give the agent your constraints a few at a time. If something fails, use the backup plan in your goals. Only agree to a booking when it meets every requirement. When all goals are done, say {end}."""


def system_prompt(scenario: Scenario, agent: str) -> str:
    prompt = _PROMPT.format(agent=agent, goal=scenario.instruction, end=END_MARKER)
    if scenario.persona is not None:
        prompt = f"{scenario.persona.text}\n{prompt}"
    return prompt


def user_view(scenario: Scenario, visible: list[Message], agent: str) -> list[Message]:
    """The conversation with roles flipped: the simulator 'assistant' plays the customer; `agent` says who it talks to."""
    flipped = {"user": "assistant", "assistant": "user"}
    return [Message(role="system", content=system_prompt(scenario, agent))] + [
        Message(role=flipped[m.role], content=m.content) for m in visible
    ]


def wants_to_end(text: str) -> bool:
    return END_MARKER in text
