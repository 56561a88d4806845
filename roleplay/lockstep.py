"""The loop every role-play stage runs: all its conversations advance together, one batched model call per role a
round, until each is done; a progress bar counts the finished ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def lockstep(items: Sequence[T], done: Callable[[T], bool], round_: Callable[[list[T]], None], desc: str, unit: str,
             on_progress: Callable[[int, int], None] | None = None) -> None:
    """Call `round_` with the items not done until none is left; `on_progress(finished, total)` when that grows."""
    bar = tqdm(total=len(items), desc=desc, unit=unit)
    finished = 0
    while live := [x for x in items if not done(x)]:
        round_(live)
        now = sum(done(x) for x in items)
        if now != finished:
            bar.update(now - finished)
            finished = now
            if on_progress:
                on_progress(finished, len(items))
    bar.close()
