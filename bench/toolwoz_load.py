"""Benchmark: building ToolWOZ from the josh-train zip vs loading the cached tasks.

Target (issue 2): a cached load under 2 s. Both are measured in this one run, side by side,
in a fresh cache dir; `uptime`'s load average is printed so a busy machine shows.

    .venv/bin/python bench/toolwoz_load.py
"""

import os
import tempfile
import time

os.environ["SELFTRAIN_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-toolwoz-")

from envs.toolwoz.data import load_toolwoz  # noqa: E402


def timed() -> float:
    load_toolwoz.cache_clear()
    start = time.perf_counter()
    load_toolwoz()
    return time.perf_counter() - start


if __name__ == "__main__":
    build, cached = timed(), min(timed() for _ in range(3))
    print(f"load average (1/5/15 min): {os.getloadavg()}")
    print(f"build from zip: {build:.2f} s | cached load: {cached:.2f} s | ratio {build / cached:.1f}x")
