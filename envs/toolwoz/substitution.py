"""Slot values swapped consistently through a human transcript, so that copying is the only way to lower the loss.

MultiWOZ has few values (13 stations, 110 restaurants, the same times again and again): a
tiny model trained on it learns their prior and searches `london liverpool street` whatever
the customer asked for. Here a transcript's values are replaced by draws from a wider pool,
the same replacement wherever the value occurs (the customer's words, the call, the tool
result, the agent's reply), so the value in a call can only be read off the conversation.

A value is replaced only where the conversation itself shows it (in speech or a tool
result): a call value the customer put in other words ("seven thirty") stays, so no call
ever carries a value nobody said. Times move by one offset per transcript, which keeps
"leave after" and "arrive by" true of the rows a search returned.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from functools import cache
from typing import Any, Literal

from core.types import Dialogue
from envs.toolwoz.data import ToolWOZData, is_empty
from formats.react import format_call, format_speak, parse_action

Pool = Literal["db", "wide"]

# Which kind of value a field holds, in calls and in tool results ("name" depends on the domain).
_KINDS = {
    "food": "food", "area": "area", "pricerange": "pricerange", "departure": "station", "destination": "station",
    "day": "day", "leaveAt": "time", "arriveBy": "time", "time": "time", "people": "count", "stay": "count",
    "stars": "stars", "trainID": "train id", "phone": "phone", "postcode": "postcode", "address": "address",
}
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOSED = {"day": DAYS, "area": ("centre", "north", "south", "east", "west"), "pricerange": ("cheap", "moderate", "expensive"),
           "count": tuple(str(n) for n in range(1, 9))}  # kinds whose every value is already in the corpus

# Plausible values MultiWOZ never uses, so that no value is predictable from the corpus alone.
_STATIONS = (
    "oxford", "york", "bristol temple meads", "reading", "milton keynes central", "bedford", "luton airport parkway",
    "ipswich", "colchester", "harlow town", "st albans city", "watford junction", "sheffield", "nottingham", "derby",
    "coventry", "manchester piccadilly", "leeds", "hitchin", "royston", "letchworth", "huntingdon", "march",
    "thetford", "bury st edmunds", "newmarket", "audley end", "london paddington", "london euston", "gatwick airport",
)
_FOODS = (
    "burmese", "peruvian", "ethiopian", "greek", "nepalese", "brazilian", "malaysian", "polish", "russian",
    "scandinavian", "caribbean", "moroccan", "persian", "filipino", "german", "cuban", "argentinian", "hungarian",
    "sri lankan", "georgian", "swiss", "indonesian", "welsh", "irish",
)
_ADJECTIVES = ("golden", "silver", "red", "green", "blue", "old", "little", "royal", "crooked", "quiet", "hidden",
               "copper", "white", "black", "lucky", "crimson", "amber", "velvet", "wild", "merry")
_NOUNS = ("lantern", "oak", "willow", "swan", "fox", "anchor", "bell", "crown", "lion", "harbour", "orchard",
          "meadow", "river", "bridge", "garden", "kettle", "sparrow", "heron", "mill", "spire")
_SURNAMES = ("ashford", "bramley", "carlisle", "dunmore", "everton", "fairfax", "grantham", "hollis", "ingram",
             "jarvis", "kendall", "lowell", "marlow", "norris", "oakley", "pemberton", "quincy", "radley",
             "stanton", "thorne", "underwood", "vance", "whitley", "yardley")
_NAME_FORMS = {
    "restaurant": ("the {adj} {noun}", "{surname} kitchen", "{surname} bistro", "the {noun} grill", "{adj} {noun} cafe"),
    "hotel": ("{surname} guest house", "the {adj} {noun} hotel", "{noun} lodge", "{surname} house"),
    "attraction": ("{surname} college", "museum of the {noun}", "{adj} {noun} gallery", "{surname} theatre",
                   "{noun} park"),
}


def value_pools(data: ToolWOZData, pool: Pool) -> dict[str, list[str]]:
    """Candidate values per kind: the databases' own, and with `wide` as many plausible unseen ones."""
    pools: dict[str, set[str]] = {kind: set(values) for kind, values in _CLOSED.items()}
    for domain, rows in data.databases.items():
        for row in rows:
            for field, value in row.items():
                kind = _kind(domain, field)
                if kind and kind != "time" and kind not in _CLOSED and isinstance(value, str) and not is_empty(value):
                    pools.setdefault(kind, set()).add(_key(value))
    if pool == "wide":
        rng = random.Random(0)
        pools["station"] |= set(_STATIONS)
        pools["food"] |= set(_FOODS)
        for domain, forms in _NAME_FORMS.items():
            pools[f"{domain} name"] |= {rng.choice(forms).format(adj=rng.choice(_ADJECTIVES), noun=rng.choice(_NOUNS),
                                                                  surname=rng.choice(_SURNAMES)) for _ in range(300)}
        pools["train id"] |= {f"tr{rng.randrange(1000, 10000)}" for _ in range(3000)}
        pools["phone"] |= {f"01{rng.randrange(10**8, 10**9)}" for _ in range(300)}
        pools["postcode"] |= {f"cb{rng.randrange(1, 40)}{rng.randrange(1, 10)}{rng.choice('abdefghjlnpqrstuwxyz')}"
                              f"{rng.choice('abdefghjlnpqrstuwxyz')}" for _ in range(300)}
        pools["address"] |= {f"{rng.randrange(1, 200)} {rng.choice(_NOUNS)} {rng.choice(('road', 'street', 'lane'))}"
                             for _ in range(300)}
    return {kind: sorted(values) for kind, values in pools.items()}


def substitute_corpus(dialogues: list[Dialogue], pools: dict[str, list[str]], share: float, seed: int) -> list[Dialogue]:
    """A seeded `share` of the transcripts with their values swapped (`substitute`), the rest as they are."""
    out = []
    for d in dialogues:
        rng = random.Random(f"{seed}/{d.scenario.task_id}")
        out.append(substitute(d, pools, rng) if rng.random() < share else d)
    return out


def substitute(dialogue: Dialogue, pools: dict[str, list[str]], rng: random.Random) -> Dialogue:
    """The transcript with every value the conversation shows replaced, consistently, by a draw from `pools`."""
    mapping = _replacements(dialogue, pools, rng)
    if not mapping:
        return dialogue
    swap = _swapper(mapping)
    messages = []
    for m in dialogue.messages:
        if m.tool_calls:
            calls = tuple(c.model_copy(update={"arguments": _swap_json(c.arguments, swap)}) for c in m.tool_calls)
            messages.append(m.model_copy(update={"content": format_call(calls[0]), "tool_calls": calls}))
        elif m.role == "tool":
            messages.append(m.model_copy(update={"content": _swap_result(m.content, swap)}))
        elif m.role == "assistant" and (speech := parse_action(m.content).speak) is not None:
            messages.append(m.model_copy(update={"content": format_speak(swap(speech))}))
        else:
            messages.append(m.model_copy(update={"content": swap(m.content)}))
    scenario = dialogue.scenario.model_copy(update={"instruction": swap(dialogue.scenario.instruction)})
    return dialogue.model_copy(update={"messages": tuple(messages), "scenario": scenario})


def _key(value: str) -> str:
    """How a value is compared and replaced: lowercase, without apostrophes (the tools read it so too)."""
    return value.lower().replace("'", "")


def _kind(domain: str, field: str) -> str | None:
    return f"{domain} name" if field == "name" else _KINDS.get(field)


def _values(dialogue: Dialogue) -> dict[str, str]:
    """Every value of a known kind in the calls and tool results, with its kind (the first one seen)."""
    found: dict[str, str] = {}
    domain = ""
    for m in dialogue.messages:
        fields: Iterable[tuple[str, Any]] = ()
        if m.tool_calls:
            domain = m.tool_calls[0].name.partition("_")[2]
            fields = m.tool_calls[0].arguments.items()
        elif m.role == "tool":
            fields = _fields(_json(m.content))
        for field, value in fields:
            kind = _kind(domain, field)
            if kind and isinstance(value, str) and not is_empty(value) and (kind != "time" or _TIME.match(value)):
                found.setdefault(_key(value), kind)
    return found


def _replacements(dialogue: Dialogue, pools: dict[str, list[str]], rng: random.Random) -> dict[str, str]:
    """One new value per value the conversation shows (in speech or a tool result); no two get the same one."""
    shown = " \n ".join(m.content for m in dialogue.messages if not m.tool_calls)
    values = {}
    for value, kind in sorted(_values(dialogue).items(), key=lambda item: -len(item[0])):
        shown, hits = _pattern(value).subn("\0", shown)  # shown only inside a longer value: not shown on its own
        if hits:
            values[value] = kind
    mapping = _time_shift([v for v, kind in values.items() if kind == "time"], rng)
    taken = set(values)
    for value, kind in values.items():
        if kind == "time" or not pools.get(kind):
            continue
        draws = (rng.choice(pools[kind]) for _ in range(20))  # the pools are far larger than a transcript's values
        if (new := next((d for d in draws if d not in taken), None)) is not None:
            mapping[value] = new
            taken.add(new)
            if kind.endswith(" name") and value.startswith("the "):  # "the cambridge belfry", said "cambridge belfry"
                mapping.setdefault(value[4:], mapping[value].removeprefix("the "))
    return mapping


def _time_shift(times: list[str], rng: random.Random) -> dict[str, str]:
    """All times moved by one offset (a multiple of 5 minutes) that keeps each within the day."""
    if not times:
        return {}
    minutes = {t: int(t[:2]) * 60 + int(t[3:]) for t in times}
    low, high = -min(minutes.values()), 23 * 60 + 59 - max(minutes.values())
    offset = 5 * rng.randint(-(-low // 5), high // 5) if high >= low else 0
    return {t: f"{(m + offset) // 60:02d}:{(m + offset) % 60:02d}" for t, m in minutes.items()}


@cache
def _pattern(value: str) -> re.Pattern:
    """`value` as a whole word or phrase in any case, with or without an apostrophe before a word's last s (`christ's`)."""
    body = re.sub(r"s\b", "'?s", re.escape(value))
    return re.compile(rf"(?<![\w:.]){body}(?![\w:]|[.,]\d)", re.IGNORECASE)


def _swapper(mapping: dict[str, str]):
    """Replace every value in a text; where two overlap the longer wins (`london kings cross` over `london`)."""
    patterns = [(_pattern(v), r) for v, r in mapping.items()]

    def swap(text: str) -> str:
        spans = sorted((m.start(), -m.end(), r) for p, r in patterns for m in p.finditer(text))
        out, at = [], 0
        for start, end, new in spans:
            if start >= at:
                out += [text[at:start], new]
                at = -end
        return "".join(out) + text[at:]

    return swap


def _swap_json(value: Any, swap) -> Any:
    if isinstance(value, str):
        return swap(value)
    if isinstance(value, dict):
        return {k: _swap_json(v, swap) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap_json(v, swap) for v in value]
    return value


def _swap_result(content: str, swap) -> str:
    """A tool result's strings swapped inside its JSON (an error text as plain text)."""
    value = _json(content)
    return swap(content) if value is None else json.dumps(_swap_json(value, swap))


def _json(content: str) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _fields(result: Any) -> Iterable[tuple[str, Any]]:
    """The (field, value) pairs of search rows and of a booking's return."""
    rows = result if isinstance(result, list) else [result.get("return", {})] if isinstance(result, dict) else []
    return [(k, v) for row in rows if isinstance(row, dict) for k, v in row.items()]
