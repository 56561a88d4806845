"""The domains role-play runs on, by name (a config's `benchmark`); each imported only when asked for."""

from __future__ import annotations

from functools import cache

from core.config import SPLITS
from envs.domain import Domain

DOMAINS = tuple(SPLITS)


@cache
def domain(name: str) -> Domain:
    if name == "toolwoz":
        from envs.toolwoz.domain import ToolWOZ

        return ToolWOZ()
    if name in ("retail", "airline"):
        from envs.taubench.domain import TauBench

        return TauBench(name)
    raise ValueError(f"no domain {name!r} (domains: {', '.join(DOMAINS)})")
