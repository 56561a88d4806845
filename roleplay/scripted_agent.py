"""A scripted perfect agent for ToolWOZ: each ground-truth call, made once the customer has said its values.

It measures a user simulator, not an agent: against a customer that conveys its whole goal
it reaches the oracle ceiling, and a value the customer never says stalls it. It asks for a
missing slot the way MultiWOZ agents do, offers what a search found (the goal's own entity
when the goal books one) and confirms bookings, so the customer has something to react to.
"""

from __future__ import annotations

import json

from core.types import Message, ToolCall
from envs.toolwoz.agenda import conveyed
from envs.toolwoz.data import ToolWOZTask, is_empty, unique_id_key
from envs.toolwoz.tools import same_call
from core.types import Generation
from formats.react import END, format_call, format_speak
from roleplay.rollout import Episode, take_turns
from roleplay.users import UserSimulator

QUESTIONS = {
    "area": "what area would you like?", "pricerange": "do you have a price range in mind?",
    "food": "what type of food would you like?", "name": "do you have a name in mind?",
    "stars": "how many stars would you like?", "type": "what type of place are you looking for?",
    "parking": "do you need parking?", "internet": "do you need internet?",
    "departure": "where will you be departing from?", "destination": "where are you going to?",
    "day": "what day would you like?", "leaveAt": "what time would you like to leave?",
    "arriveBy": "what time do you need to arrive by?", "people": "how many people?",
    "time": "what time would you like?", "stay": "how many nights will you stay?",
}


def missing(call: ToolCall, said: str) -> list[str]:
    """The call's values the customer has not said yet (the entity to book is found, not said)."""
    key = unique_id_key(call.name.split("_")[1])
    return [k for k, v in call.arguments.items()
            if isinstance(v, str) and not is_empty(v) and not (call.name.startswith("book") and k == key)
            and not conveyed(k, v, said)]


def scripted_reply(task: ToolWOZTask, record: list[Message]) -> str:
    """The next agent step (ReAct text) given the agent's record so far."""
    made = [m.tool_calls[0] for m in record if m.tool_calls]
    if record and record[-1].role == "tool":
        return format_speak(_report(task, made, record[-1].content))
    said = " ".join(m.content for m in record if m.role == "user")
    pending = [c for c in task.ground_truth_calls() if not any(same_call(c, m) for m in made)]
    searches_left = {c.name.split("_")[1] for c in pending if c.name.startswith("search")}
    ready = [c for c in pending if c.name.startswith("search") or c.name.split("_")[1] not in searches_left]
    for call in ready:
        if not missing(call, said):
            return f"PLAN the customer gave every detail {END} {format_call(call)}"
    if pending:
        return format_speak(QUESTIONS[missing(pending[0], said)[0]])
    return format_speak("is there anything else i can help you with?")


def _report(task: ToolWOZTask, made: list[ToolCall], result: str) -> str:
    action, domain = made[-1].name.split("_")
    goal, key = task.goals[domain], unique_id_key(domain)
    if action == "book":
        reply = json.loads(result) if result.startswith("{") else {}
        if reply.get("success"):
            return f"booking was successful. the reference number is {reply['return'].get('reference', '')}."
        return "sorry, the booking failed."
    rows = json.loads(result) if result.startswith("[") else []
    entity = (goal.book or {}).get(key) or (rows[0].get(key) if rows else None)
    if entity is None:
        return "sorry, i could not find a match."
    booking_left = goal.book is not None and not any(m.name == f"book_{domain}" for m in made)
    return f"{entity} matches your request." + (" would you like me to book it?" if booking_left else "")


def play_scripted(episodes: list[Episode], tasks: dict[str, ToolWOZTask], user: UserSimulator, sampling) -> list[Episode]:
    """Run episodes with the scripted agent against a user simulator (one batched user call per round)."""
    while waiting := [e for e in episodes if not e.done]:
        take_turns([e for e in waiting if e.waiting_for == "user"], None, user, sampling)
        for e in (e for e in waiting if e.waiting_for == "agent"):
            while e.waiting_for == "agent":
                e.on_agent(Generation(scripted_reply(tasks[e.scenario.task_id], e.record), 0, 0))
    return episodes
