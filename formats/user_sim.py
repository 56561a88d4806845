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
    return [Message(role="system", content=system_prompt(scenario, agent)), *customer_side(visible)]


def customer_side(visible: list[Message]) -> list[Message]:
    """What the customer saw, as its model's chat: its own turns are the 'assistant' ones, the agent's the 'user'
    ones, and a result of its own tool call (dual control) comes to it like the agent's words, marked as a result."""
    flipped = {"user": "assistant", "assistant": "user", "tool": "user"}
    return [Message(role=flipped[m.role], content=f"{RESULT}{m.content}" if m.role == "tool" else m.content)
            for m in visible]


RESULT = "Result of your tool call: "


def wants_to_end(text: str) -> bool:
    return END_MARKER in text
