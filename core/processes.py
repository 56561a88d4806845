"""Processes that end with their parent, and calls run in a process of their own.

glibc does not give back all of a long build's heap, however it is trimmed (`core/memory.py`): the first parse of
ToolWOZ's raw JSON left ~1.1 GiB in the process that every later stage of a pipeline carried. A call run in a child
gives all of it back when the child ends.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> None:
    """Ask Linux to send this process `sig` when its parent dies, however it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def in_fresh_process(fn: Callable[..., T], *args) -> T:
    """`fn(*args)` in a new Python process, its result or its exception returned here. Not `multiprocessing`: its
    spawn re-runs the caller's main script, which breaks for `python -` and for scripts without a `__main__` guard."""
    with tempfile.TemporaryDirectory(prefix="selftrain-child-") as tmp:
        result = Path(tmp) / "result.pickle"
        boot = "import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); import core.processes as p; p._child()"
        code = subprocess.run([sys.executable, "-c", boot, str(result), str(os.getpid())],
                              input=pickle.dumps(sys.path) + pickle.dumps((fn, args))).returncode
        if not result.is_file():
            name = getattr(fn, "__name__", repr(fn))
            raise RuntimeError(f"the process running {name} ended abruptly (exit code {code}: killed, or out of memory)")
        ok, value = pickle.loads(result.read_bytes())
    if ok:
        return value
    raise value


def _child() -> None:
    """The child's side: dies with its parent (Linux), runs the call, pickles what came of it for the parent."""
    result, parent = Path(sys.argv[1]), int(sys.argv[2])
    if sys.platform.startswith("linux"):
        die_with_parent()
        if os.getppid() != parent:  # the parent died before prctl
            sys.exit(1)
    fn, args = pickle.load(sys.stdin.buffer)
    try:
        outcome = (True, fn(*args))
    except BaseException as e:
        traceback.print_exc()
        outcome = (False, e)
    try:
        data = pickle.dumps(outcome)
    except Exception:  # an exception that does not pickle still reaches the parent as its line
        data = pickle.dumps((False, RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]}")))
    result.write_bytes(data)
