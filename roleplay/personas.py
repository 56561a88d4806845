"""Simulated users with diverse personas (after LLM Roleplay, Tamoyan et al. 2024).

A persona is a draw from an attribute grid: LLM Roleplay's demographics plus the traits
that change how a customer talks to an agent. Same seed, same personas; a persona's id is
the hash of its attributes. The text the user simulator is prompted with comes from a
template, optionally rewritten as prose by a model. Near-duplicate texts are dropped and
diversity is measured so a run can show how varied its users were. Plain Python.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from core.types import Message, Persona

GRID: dict[str, tuple[str, ...]] = {
    "age": ("19", "24", "31", "38", "45", "52", "60", "67", "74"),
    "race": ("White", "Black", "East Asian", "South Asian", "Hispanic", "Middle Eastern", "mixed-race"),
    "gender": ("female", "male", "non-binary"),
    "education": ("no formal qualifications", "a high school diploma", "a vocational certificate",
                  "a bachelor's degree", "a master's degree", "a doctorate"),
    "native_english": ("is", "is not"),
    "verbosity": ("terse", "average", "talkative"),
    "patience": ("impatient", "patient"),
    "cooperativeness": ("cooperative", "vague until asked", "changes their mind"),
    "domain_expertise": ("first-time visitor to Cambridge", "occasional visitor", "local who knows the city"),
    "language_proficiency": ("basic", "fluent", "formal"),
}

_STYLE = {
    "verbosity": {"terse": "You write very short messages.", "average": "You write messages of normal length.",
                  "talkative": "You write long, chatty messages."},
    "patience": {"impatient": "You are in a hurry and get annoyed by questions.",
                 "patient": "You are patient and happy to answer questions."},
    "cooperativeness": {"cooperative": "You volunteer the details the agent needs.",
                        "vague until asked": "You only give details when the agent asks for them.",
                        "changes their mind": "You sometimes change a detail after stating it."},
    "language_proficiency": {"basic": "Your English is basic, with simple words and small mistakes.",
                             "fluent": "Your English is fluent and casual.",
                             "formal": "Your English is precise and formal."},
}

REWRITE_PROMPT = (
    "Rewrite this description of a customer as a vivid second-person persona of three or four sentences, "
    "keeping every fact and speaking style it states. Reply with the persona only.\n\n{text}"
)


def sample_personas(n: int, seed: int) -> list[Persona]:
    """`n` distinct attribute combinations drawn uniformly from the grid (all of it if smaller)."""
    rng = random.Random(seed)
    size = 1
    for values in GRID.values():
        size *= len(values)
    drawn: dict[str, Persona] = {}
    while len(drawn) < min(n, size):
        attributes = {k: rng.choice(values) for k, values in GRID.items()}
        persona = Persona(attributes=attributes, text=render(attributes))
        drawn.setdefault(persona.id, persona)
    return list(drawn.values())


def render(a: dict[str, str]) -> str:
    """The LLM Roleplay template, then one sentence per conversational trait."""
    who = (f"You are a {a['age']}-year-old {a['race']} individual with a {a['gender']} gender identity, "
           f"holding {a['education']}, and English {a['native_english']} your native language. "
           f"You are a {a['domain_expertise']}.")
    return " ".join([who, *(_STYLE[trait][a[trait]] for trait in _STYLE)])


def rewrite_prompts(personas: list[Persona]) -> list[list[Message]]:
    return [[Message(role="user", content=REWRITE_PROMPT.format(text=p.text))] for p in personas]


def with_prose(persona: Persona, prose: str) -> Persona:
    """The persona with model-written text; an empty rewrite keeps the template text."""
    return persona.model_copy(update={"text": prose.strip() or persona.text})


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def drop_near_duplicates(personas: list[Persona], threshold: float) -> tuple[list[Persona], list[Persona]]:
    """(kept, dropped): a text whose word-trigram Jaccard similarity to a kept one reaches `threshold` is dropped."""
    kept, dropped, seen = [], [], []
    for p in personas:
        grams = _shingles(p.text)
        if any(len(grams & other) / len(grams | other) >= threshold for other in seen):
            dropped.append(p)
        else:
            kept.append(p)
            seen.append(grams)
    return kept, dropped


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Unique word n-grams over all n-grams (Li et al. 2016): 1.0 = no n-gram repeats across the texts."""
    grams = [tuple(w[i : i + n]) for w in (t.lower().split() for t in texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def diversity(personas: list[Persona], dropped: int) -> dict[str, float | int]:
    texts = [p.text for p in personas]
    return {
        "personas": len(personas),
        "near_duplicates_dropped": dropped,
        "unique_attribute_combinations": len({p.id for p in personas}),
        **{f"unique_{k}": len({p.attributes[k] for p in personas}) for k in GRID},
        "distinct_1": round(distinct_n(texts, 1), 4),
        "distinct_2": round(distinct_n(texts, 2), 4),
    }
