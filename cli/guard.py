"""Nothing outlives a killed `selftrain`: Prefect starts its temporary server (and Dask its workers) as children that
a `kill -9` of the command would leave running. The command marks its environment, which every process it starts
inherits, and starts this watcher; when the command dies, however it dies, the kernel tells the watcher (Linux's
parent-death signal) and it ends every process still carrying the mark. Elsewhere there is no watcher.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from core.processes import die_with_parent

MARK = "SELFTRAIN_RUN"


def watch_this_process() -> None:
    """Mark this process's environment with a fresh run id and start the watcher for it (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    os.environ[MARK] = uuid.uuid4().hex
    subprocess.Popen([sys.executable, "-m", "cli.guard", str(os.getpid())], cwd=Path(__file__).resolve().parents[1],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)  # a terminal's Ctrl-C reaches the command, not this watcher


def marked(run: str) -> list[int]:
    """The processes, other than this one, whose environment carries `run`."""
    needle = f"{MARK}={run}".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if int(proc.name) != os.getpid() and needle in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


def end(pids: list[int], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL whatever is left after `grace_s`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 0.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while (pids := [p for p in pids if Path(f"/proc/{p}").exists()]) and time.monotonic() < deadline:
            time.sleep(0.2)


def main(parent: int) -> None:
    run = os.environ[MARK]
    signal.signal(signal.SIGTERM, lambda *_: None)  # the parent-death signal wakes the wait below
    die_with_parent()
    while os.getppid() == parent:  # the parent may have died before prctl: then the loop never waits
        signal.pause()
    end(marked(run))


if __name__ == "__main__":
    main(int(sys.argv[1]))
