"""How many of this process's cores nobody else is using: torch's thread count for local models.

On a shared CPU, torch threads beyond the idle cores do not add speed, they take it away: each waits for a core that
another process holds (measured here: SmolLM2 decoding at 4 tokens/s with two threads beside a busy core, 111 with
one). OpenMP's passive wait (`cli/__init__.py`) softens a wrong guess; this avoids it.
"""

from __future__ import annotations

import os
import time


def idle_cores(interval_s: float = 0.2) -> int:
    """Cores of this process's affinity that were idle over the last `interval_s` (at least one), read from
    /proc/stat; every allowed core where that file does not exist."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    first = _idle_and_total(allowed)
    if first is None:
        return len(allowed)
    time.sleep(interval_s)
    idle, total = (after - before for after, before in zip(_idle_and_total(allowed), first))
    return max(1, min(len(allowed), round(len(allowed) * idle / total))) if total else len(allowed)


def _idle_and_total(cpus: list[int]) -> tuple[int, int] | None:
    """Jiffies idle (idle + iowait) and in all, summed over `cpus`."""
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
    return idle, total
