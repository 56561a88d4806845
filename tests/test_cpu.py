"""torch's thread count follows the cores nobody else is using."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

from core.cpu import idle_cores

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


def test_a_core_this_command_keeps_busy_itself_counts_as_idle():
    """A Prefect server or worker the command started is not what its torch threads compete with."""
    allowed = len(os.sched_getaffinity(0))
    before = idle_cores(0.5)
    with spinners(allowed - 1, ours=True):
        during = idle_cores(0.5)
    assert during >= min(before, idle_cores(0.5))  # what others ran before or after, not ours, sets the count
