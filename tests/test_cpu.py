"""torch's thread count follows the cores nobody else is using."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

from core.cpu import _tree_ticks, idle_cores

SPIN = f"'{sys.executable}' -c 'while True: pass'"


@contextmanager
def spinners(count: int, ours: bool):
    """`count` busy processes for half a second: this test's children, or the orphans of shells that have exited,
    which stand for another program's load."""
    if ours:
        pids = [subprocess.Popen(["sh", "-c", f"exec {SPIN}"]).pid for _ in range(count)]
    else:
        pids = [int(subprocess.run(["sh", "-c", f"{SPIN} >/dev/null 2>&1 & echo $!"], capture_output=True,
                                   text=True, check=True).stdout) for _ in range(count)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            if ours:
                os.waitpid(pid, 0)


def test_a_core_another_program_keeps_busy_is_not_counted_as_idle():
    allowed = len(os.sched_getaffinity(0))
    assert 1 <= idle_cores() <= allowed
    with spinners(allowed - 1, ours=False):
        assert idle_cores(0.5) == 1  # every core but one is taken (others' load can only take more)


def test_the_cpu_time_of_the_commands_own_children_counts_as_its_own():
    """What a Prefect server or worker the command started runs is not load its torch threads compete with: idle
    cores count it as idle. Measured on the jiffies themselves, so the other programs' load does not matter."""
    for ours in (True, False):
        with spinners(1, ours=ours):
            start, before = time.monotonic(), _tree_ticks()
            time.sleep(0.5)
            share = (_tree_ticks() - before) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - start)
        assert (share > 0.2) if ours else (share < 0.1), (ours, share)  # a spinning child runs most of the time
