"""Checks that end a simulated conversation early, so broken role-play never reaches the datasets.

From LLM Roleplay: a reply that loops (an n-gram of 2..max_n words said `repeats` times in
a row) is non-coherent. From JOSH-style role-play: a user simulator that writes the agent's
commands has flipped roles. Pure functions of the text.
"""

from __future__ import annotations

import re

from formats import react

_AGENT_MARKERS = re.compile(rf"\b(PLAN|APICALL|SPEAK|{react.APIRETURN})\b|{re.escape(react.END)}")


def is_non_coherent(text: str, max_n: int = 10, repeats: int = 2) -> bool:
    """True when some word n-gram (2 <= n <= max_n) occurs `repeats` times back to back."""
    words = text.lower().split()
    for n in range(2, max_n + 1):
        for start in range(len(words) - n * repeats + 1):
            gram = words[start : start + n]
            if all(words[start + k * n : start + (k + 1) * n] == gram for k in range(1, repeats)):
                return True
    return False


def is_role_flip(user_text: str) -> bool:
    """The user simulator wrote agent actions (PLAN/APICALL/SPEAK) or a tool result."""
    return bool(_AGENT_MARKERS.search(user_text))
