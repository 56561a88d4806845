"""A goal-agenda user simulator for ToolWOZ (after Schatzmann et al. 2007 and ConvLab's agenda policy).

No model behind it: from the task's goals the customer keeps an agenda per domain (search
constraints to inform, booking details to give) and works through the domains in order.
Each turn it reacts to the agent's words, then pops the next few constraints:
- an offered entity (a name or train ID from the domain's database) is checked against the
  goal: accepted when it meets it (or is the goal's own booked entity), rejected otherwise,
  with the constraints it breaks said again;
- a question about a slot is answered from the goal ("no preference" when the goal has none);
- a proposal to book, or an accepted offer, gets the booking details; a confirmed booking
  serves the domain; "no match" gets the constraints restated;
- a domain that keeps failing (PATIENCE) is left for later: the next one comes first;
- when every domain is served it says goodbye with END_CONVERSATION, never before.
It only ever states its goal's own values, verbatim, so it never contradicts its goal. The
persona sets the style (constraints per turn, politeness, small talk); phrasing comes from
`envs/toolwoz/phrases.py`; every choice is seeded, so the same conversation gets the same reply.
A reply is a pure function of the conversation so far (replayed from the start), so JOSH
branches need no copy of any state. Plain Python.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from core.types import Persona
from envs.toolwoz import phrases
from envs.toolwoz.data import ToolWOZData, ToolWOZTask, is_empty, query, unique_id_key
from envs.toolwoz.tools import normalise
from formats.user_sim import END_MARKER

YES_NO_WORDS = {"parking": r"parking", "internet": r"internet|wi-?fi"}
_CONFIRMED = re.compile(r"\bbooked\b|reference|booking (was|is) (successful|complete|confirmed)|\breserved\b|confirmation")
_FAILED = re.compile(r"unsuccessful|unable|not able|\bfail|couldn ?t|could not|cannot|can ?t|unavailable|not available"
                     r"|no availability|sorry")
_NO_MATCH = re.compile(r"\b(no|not|none|nothing|unfortunately|sorry|couldn ?t|cannot|unable)\b.*"
                       r"\b(match|find|found|available|results?|any|none|nothing)\b")
_PROPOSES_BOOKING = re.compile(r"\bbook|reserv")
_TRAIN_ID = re.compile(r"\btr ?(\d{4})\b")
PATIENCE = 3  # failures before the customer leaves a domain for later and goes on with the next


@dataclass(frozen=True)
class Style:
    """How this customer talks: constraints per turn, politeness, small talk."""

    per_turn: int = 2
    polite: bool = True
    chatty: bool = False


def style_of(persona: Persona | None, seed: int = 0) -> Style:
    """A persona's style: its verbosity and cooperativeness when it has them, else a seeded draw by its id."""
    if persona is None:
        return Style()
    rng = random.Random(f"style/{seed}/{persona.id}")
    traits = persona.attributes
    per_turn = {"vague until asked": 1, "cooperative": 3}.get(traits.get("cooperativeness", ""), rng.choice([1, 2, 3]))
    verbosity = traits.get("verbosity") or rng.choice(["terse", "average", "talkative"])
    return Style(per_turn=per_turn, polite=verbosity != "terse" and rng.random() < 0.8, chatty=verbosity == "talkative")


@dataclass(frozen=True)
class UserTurn:
    text: str
    informed: tuple[tuple[str, str, str], ...]  # (domain, slot, value) said this turn: always the goal's own
    ended: bool


@dataclass
class _Domain:
    name: str
    search: dict[str, str]  # the goal's constraints, in the order they will be told
    book: dict[str, str]  # booking details (the entity to book is the agent's to find)
    entity: str | None  # the goal's booked name / train ID: acceptable even where the database disagrees with the goal
    told: set[str] = field(default_factory=set)
    told_book: set[str] = field(default_factory=set)
    accepted: str | None = None
    booked: bool = False
    failures: int = 0  # offers rejected, searches retried, suggestions asked for in vain

    @property
    def done(self) -> bool:
        return self.booked if self.book else self.accepted is not None or not self.search

    def untold(self) -> list[str]:
        return [s for s in self.search if s not in self.told]


def goal_values(task: ToolWOZTask) -> list[tuple[str, str, str]]:
    """(domain, slot, value) the customer must convey: search constraints and booking details, not the entity."""
    out = []
    for domain, goal in task.goals.items():
        booking = {k: v for k, v in (goal.book or {}).items() if k != unique_id_key(domain)}
        for params in (goal.search or {}, booking):
            out += [(domain, k, v) for k, v in params.items() if isinstance(v, str) and not is_empty(v)]
    return list(dict.fromkeys(out))


def conveyed(slot: str, value: str, text: str) -> bool:
    """Whether `text` (what the customer said) states this value: the value itself, or the slot for a yes/no slot."""
    text = normalise(text)
    if slot in YES_NO_WORDS and value in ("yes", "no"):
        return bool(re.search(YES_NO_WORDS[slot], text))
    return bool(re.search(rf"(?<![\w:]){re.escape(normalise(value))}(?![\w:])", text))


def conveyed_values(task: ToolWOZTask, said: str) -> tuple[int, int]:
    """(goal values stated in `said`, goal values there are): how much of its goal a customer got across."""
    values = goal_values(task)
    return sum(conveyed(slot, value, said) for _, slot, value in values), len(values)


class Catalog:
    """The databases as the customer reads an agent's words: entities by name or train ID."""

    def __init__(self, data: ToolWOZData):
        self.rows = {d: {normalise(r[unique_id_key(d)]): r for r in rows if isinstance(r.get(unique_id_key(d)), str)}
                     for d, rows in data.databases.items()}
        self.names = {d: _name_pattern(self.rows[d]) for d in self.rows if d != "train"}

    def offered(self, domain: str, text: str) -> tuple[str, dict] | None:
        """The first entity of the domain the agent names, with its database row."""
        rows = self.rows[domain]
        if domain == "train":
            match = _TRAIN_ID.search(text)
            name = f"tr{match.group(1)}" if match else None
        else:
            match = self.names[domain].search(text)
            name = next((n for n in (match.group(0), f"the {match.group(0)}") if n in rows), None) if match else None
        return (name, rows[name]) if name in rows else None


class Agenda:
    """One customer's agenda over a task's goals; `reply` takes the agent's last words (None to open)."""

    def __init__(self, catalog: Catalog, task: ToolWOZTask, style: Style, seed_key: str, max_turns: int = 8):
        self.catalog, self.style, self.seed_key, self.max_turns = catalog, style, seed_key, max_turns
        order = random.Random(f"order/{seed_key}")
        self.domains = []
        for name, goal in task.goals.items():
            key = unique_id_key(name)
            search = {k: normalise(v) for k, v in (goal.search or {}).items() if isinstance(v, str) and not is_empty(v)}
            slots = list(search)
            order.shuffle(slots)
            book = {k: normalise(v) for k, v in (goal.book or {}).items() if k != key and not is_empty(v)}
            entity = normalise(goal.book[key]) if goal.book and goal.book.get(key) else None
            self.domains.append(_Domain(name, {s: search[s] for s in slots}, book, entity))
        self.turn = 0

    def current(self) -> _Domain | None:
        return next((d for d in self.domains if not d.done), None)

    def reply(self, agent_text: str | None) -> UserTurn:
        rng = random.Random(f"turn/{self.seed_key}/{self.turn}")
        self.turn += 1
        out = _Out(rng, self.style)
        domain = self.current()
        if agent_text is None:
            if self.style.chatty:
                out.say(rng.choice(phrases.CHATTER))
        elif domain is not None:
            said = normalise(agent_text)
            self._react(self._focus(domain, said), said, out)
            if domain.failures >= PATIENCE and not domain.done and len(self.domains) > 1:
                domain.failures = 0
                self.domains.remove(domain)
                self.domains.append(domain)
                out.say(rng.choice(phrases.LATER))
        follow = self.current()
        if follow is None:
            out.say(rng.choice(phrases.GOODBYE))
            return UserTurn(out.text(end=True), tuple(out.informed), True)
        self._continue(follow, out, opening=follow is not domain or agent_text is None, first=agent_text is None)
        return UserTurn(out.text(end=False), tuple(out.informed), False)

    def _focus(self, d: _Domain, text: str) -> _Domain:
        """The domain the agent's words are about: the current one, unless it names another one's entity."""
        if self.catalog.offered(d.name, text) is None:
            return next((o for o in self.domains if not o.done and self.catalog.offered(o.name, text)), d)
        return d

    def _react(self, d: _Domain, text: str, out: "_Out") -> None:
        offered = self.catalog.offered(d.name, text)
        if offered is not None:
            name, row = offered
            broken = [s for s in d.search if not _meets(row, s, d.search[s])]
            if broken and name != d.entity:
                d.failures += 1
                out.say(out.rng.choice(phrases.REJECT))
                out.inform_clauses(d, broken)
                return
            d.accepted = name
        confirmed = bool(_CONFIRMED.search(text)) and not _FAILED.search(text)
        if d.book and confirmed and set(d.book) <= d.told_book and (d.accepted or not d.untold()):
            d.accepted, d.booked = d.accepted or "booked", True
            out.say(out.rng.choice(phrases.ACCEPT))
            return
        if offered is not None and d.book:
            out.book_request(d)
            return
        if offered is not None:
            out.say(out.rng.choice(phrases.ACCEPT))
            return
        asked = _asked(d.name, [*d.search, *d.book], text)
        mine = _domain_slots(d.name)
        for other in (o for o in self.domains if o is not d and not o.done):  # a search slot only another domain has
            out.answer(other, _asked(other.name, [s for s in other.search if s not in mine], text, False))
        out.answer(d, asked)
        if asked and not any(s in d.search or s in d.book for s in asked):
            d.failures += not d.untold()  # asked again and again while everything was said: a stall
            out.say(out.rng.choice(phrases.NO_PREFERENCE))
        if asked:
            return
        if d.book and _PROPOSES_BOOKING.search(text) and "?" in text and not d.untold():
            d.accepted = d.accepted or "suggested"
            out.book_request(d)
        elif _NO_MATCH.search(text):
            d.failures += 1
            out.say(out.rng.choice(phrases.RETRY))
            out.inform_clauses(d, list(d.search))

    def _continue(self, d: _Domain, out: "_Out", opening: bool, first: bool) -> None:
        room = self._per_turn() - len(out.informed)
        untold = d.untold()
        if opening:
            out.open(d, untold[: max(1, room)], first)
        elif untold and room > 0:
            out.inform_clauses(d, untold[:room])
        elif not out.parts and not untold:
            if d.accepted is None:
                d.failures += 1
                out.say(out.rng.choice(phrases.SUGGEST))
            elif set(d.book) - d.told_book:
                out.book_request(d)
            else:
                out.say(out.rng.choice(phrases.BOOK_NOW))

    def _per_turn(self) -> int:
        """The style's pace, raised when the turns left would not hold the rest of the agenda."""
        left = max(1, self.max_turns - self.turn + 1)
        todo = [d for d in self.domains if not d.done]
        for k in range(self.style.per_turn, 8):
            if sum(math.ceil(len(d.untold()) / k) + bool(d.book) + 1 for d in todo) <= left:
                return k
        return 8


class _Out:
    """The reply being written: sentences and the (domain, slot, value) they inform."""

    def __init__(self, rng: random.Random, style: Style):
        self.rng, self.style = rng, style
        self.parts: list[str] = []
        self.informed: list[tuple[str, str, str]] = []

    def say(self, sentence: str) -> None:
        self.parts.append(sentence)

    def _phrase(self, table, d: _Domain, slot: str, value: str) -> str:
        options = table[(d.name, slot)]
        if isinstance(options, dict):
            options = options[value]
        self.informed.append((d.name, slot, value))
        return self.rng.choice(options).format(v=value)

    def open(self, d: _Domain, slots: list[str], first: bool) -> None:
        """`i am looking for a restaurant in the north serving indian food`."""
        lead = self.rng.choice(phrases.LEADS if first else phrases.ALSO)
        if "type" in slots and d.name in phrases.TYPED_NOUN:
            noun = phrases.TYPED_NOUN[d.name].format(v=d.search["type"])
            self.informed.append((d.name, "type", d.search["type"]))
        else:
            noun = self.rng.choice(phrases.NOUNS[d.name])
        body = [self._phrase(phrases.PHRASES, d, s, d.search[s]) for s in slots if not (s == "type" and "type" not in noun)]
        d.told.update(slots)
        please = ", please" if self.style.polite and self.rng.random() < 0.4 else ""
        self.say(" ".join([lead, noun, *body]) + please + ("?" if lead.startswith("can you") else "."))

    def inform_clauses(self, d: _Domain, slots: list[str]) -> None:
        if slots:
            self.say(" and ".join(self._phrase(phrases.CLAUSES, d, s, d.search[s]) for s in slots) + ".")
            d.told.update(slots)

    def answer(self, d: _Domain, slots: list[str]) -> None:
        """Answer questions about these slots from the goal; slots it has no value for are left to the caller."""
        for slot in slots:
            if slot in d.search:
                self.inform_clauses(d, [slot])
            elif slot in d.book:
                self.inform_book(d, [slot])

    def inform_book(self, d: _Domain, slots: list[str]) -> None:
        self.say(" ".join(self._phrase(phrases.PHRASES, d, s, d.book[s]) for s in slots) + ", please.")
        d.told_book.update(slots)

    def book_request(self, d: _Domain) -> None:
        slots = list(d.book)
        details = " ".join(self._phrase(phrases.PHRASES, d, s, d.book[s]) for s in slots)
        self.say(f"{self.rng.choice(phrases.BOOK_REQUESTS[d.name])} {details}".strip() + ".")
        d.told_book.update(slots)

    def text(self, end: bool) -> str:
        return " ".join([p[:1].upper() + p[1:] for p in self.parts] + ([END_MARKER] if end else []))


def _asked(domain: str, slots: list[str], text: str, others: bool = True) -> list[str]:
    """Slots the agent asks about in its questions: `slots` (the goal's) first, then (`others`) the domain's rest."""
    questions = " ".join(s for s in re.split(r"(?<=[.?!])\s+", text) if "?" in s)
    if not questions:
        return []
    candidates = [*slots, *(s for s in _domain_slots(domain) if others and s not in slots)]
    return [s for s in candidates if re.search(phrases.REQUEST_WORDS[s], questions)]


def _domain_slots(domain: str) -> list[str]:
    return [s for (dom, s) in phrases.PHRASES if dom == domain]


def _meets(row: dict, slot: str, value: str) -> bool:
    """The row satisfies one constraint, as the tools' search reads it (leaveAt later, arriveBy earlier)."""
    return bool(query([{slot: normalise(row.get(slot))}], {slot: value}))


def _name_pattern(rows: dict[str, dict]) -> re.Pattern:
    """Entity names, longest first, with a leading "the" optional (agents drop it)."""
    names = sorted({n.removeprefix("the ") for n in rows}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in names) + r")(?!\w)")


def customer_turn(catalog: Catalog, task: ToolWOZTask, persona: Persona | None, seed: int, agent_said: list[str],
                  max_turns: int = 8) -> UserTurn:
    """The customer's next turn after the agent's replies so far, replayed from the start: a pure function."""
    key = f"{seed}/{task.id}/{persona.id if persona else ''}"
    agenda = Agenda(catalog, task, style_of(persona, seed), key, max_turns)
    turn = agenda.reply(None)
    for text in agent_said:
        turn = agenda.reply(text)
    return turn
