"""How many of this process's cores nobody else is using: torch's thread count for local models.

On a shared CPU, torch threads beyond the idle cores do not add speed, they take it away: each waits for a core that
another process holds (measured here: SmolLM2 decoding at 4 tokens/s with two threads beside a busy core, 111 with
one). OpenMP's passive wait (`cli/__init__.py`) softens a wrong guess; this avoids it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def idle_cores(interval_s: float = 0.2) -> int:
    """Cores of this process's affinity that no other program used over the last `interval_s` (at least one), read
    from /proc: time this process and its children spent (a Prefect server it started, say) counts as idle, since
    they are not what torch competes with. Every allowed core where /proc does not exist."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    first = _idle_and_total(allowed)
    if first is None:
        return len(allowed)
    time.sleep(interval_s)
    idle, total, ours = (after - before for after, before in zip(_idle_and_total(allowed), first))
    return max(1, min(len(allowed), round(len(allowed) * (idle + ours) / total))) if total else len(allowed)


def _idle_and_total(cpus: list[int]) -> tuple[int, int, int] | None:
    """Jiffies idle (idle + iowait) and in all, summed over `cpus`, and those this process tree ran."""
    try:
        lines = open("/proc/stat").read().splitlines()
    except OSError:
        return None
    names = {f"cpu{c}" for c in cpus}
    idle = total = 0
    for fields in (line.split() for line in lines):
        if fields and fields[0] in names:
            ticks = [int(x) for x in fields[1:9]]
            idle, total = idle + ticks[3] + ticks[4], total + sum(ticks)
    return idle, total, _tree_ticks()


def _tree_ticks() -> int:
    """User + system jiffies of this process and its descendants (live ones)."""
    parents, ticks = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        parents[pid], ticks[pid] = int(fields[1]), int(fields[11]) + int(fields[12])
    tree, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += [child for child, parent in parents.items() if parent == pid and child not in tree]
    return sum(ticks.get(pid, 0) for pid in tree)
