"""Memory a finished stage no longer uses goes back to the system.

glibc keeps freed memory in its heaps for reuse: a stage that held a model, its attention cache and a
trainer leaves the process gigabytes larger than it needs for the next stage, and a pipeline's stages
stack up (issue 31 measured 2.5 GB after simulate growing to 5.3 GB by the last evaluation). `release`
collects Python's garbage, then asks glibc to return its free pages (`malloc_trim`); elsewhere it
does only the first. What a long build allocates is better never held by the stage process at all:
`in_fresh_process` runs it in a child whose whole memory goes back to the system when it ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
PR_SET_PDEATHSIG = 1


@cache
def _trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        return None


def release() -> None:
    gc.collect()
    if trim := _trim():
        trim(0)


def in_fresh_process(fn: Callable[..., T], *args) -> T:
    """`fn(*args)` in a new Python process, its result or its exception returned here. glibc does not give back all
    of a long build's heap, however it is trimmed: the 8M-token embedded build left ~1.2 GiB in the process that
    every later stage of a pipeline carried. Not `multiprocessing`: its spawn re-runs the caller's main script, which
    breaks for `python -` and for scripts without a `__main__` guard."""
    with tempfile.TemporaryDirectory(prefix="selftrain-child-") as tmp:
        result = Path(tmp) / "result.pickle"
        boot = "import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); import core.memory as m; m._child()"
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
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # died before prctl
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
