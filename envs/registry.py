"""The domains role-play runs on, by name (a config's `benchmark`), with their splits; each domain's code is imported
only when it is asked for."""

from __future__ import annotations

import random
from functools import cache

from envs.domain import Domain
from envs.tau2.data import SPLITS as TAU2_SPLITS
from envs.taubench.data import SPLITS as TAU_SPLITS

SPLITS = {"toolwoz": ("train", "val", "test"), **TAU_SPLITS, **TAU2_SPLITS}  # what a config may name
DOMAINS = tuple(SPLITS)


@cache
def domain(name: str) -> Domain:
    if name == "toolwoz":
        from envs.toolwoz.domain import ToolWOZ

        return ToolWOZ()
    if name in ("retail", "airline"):
        from envs.taubench.domain import TauBench

        return TauBench(name)
    if name in TAU2_SPLITS:
        from envs.tau2.domain import Tau2Bench

        return Tau2Bench(name)
    raise ValueError(f"no domain {name!r} (domains: {', '.join(DOMAINS)})")


def benchmark_domain(name: str) -> Domain | None:
    """The domain of a scenario's `domain` name; None for those with no environment (Self-talk workflows, imagined tasks)."""
    return domain(name) if name in DOMAINS else None


def select_tasks(bench: str, split: str, n: int, seed: int, draw: int = 0) -> list[str]:
    """A seeded sample of the split's task ids (the whole split when n exceeds it). Draw d > 0 samples from
    the tasks no earlier draw took: self-training round d + 1 meets tasks it has not trained on."""
    ids, taken = domain(bench).task_ids(split), set()
    for d in range(draw + 1):
        left = [i for i in ids if i not in taken]
        picked = random.Random(seed if d == 0 else f"{seed}/{d}").sample(left, min(n, len(left)))
        taken.update(picked)
    return sorted(picked)
