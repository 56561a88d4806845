"""torch's thread count follows the cores nobody else is using."""

import os
import subprocess
import sys
import time

from core.cpu import idle_cores


def test_a_core_another_process_keeps_busy_is_not_counted_as_idle():
    allowed = len(os.sched_getaffinity(0))
    assert 1 <= idle_cores() <= allowed
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(allowed - 1)]
    try:
        time.sleep(0.5)
        assert idle_cores(0.5) == 1  # every core but one is taken (others' load can only take more)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()

