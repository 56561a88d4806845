"""Memory a stage freed goes back to the system: without `release`, glibc keeps it and a pipeline's stages stack up."""

import os
import sys

import pytest

from core.memory import in_fresh_process, release


def _resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc: Linux only")
def test_freed_memory_goes_back_to_the_system():
    chunks = [bytearray(100_000) for _ in range(2000)]  # 200 MB in blocks glibc serves from its heap, not mmap
    last = chunks[-1]  # kept: the heap's top stays in use, so glibc cannot shrink it by itself
    del chunks
    held = _resident_mb()
    release()
    assert held - _resident_mb() > 150
    assert len(last) == 100_000


def test_a_build_in_a_fresh_process_returns_its_result_and_its_errors():
    """What a child holds ends with it; the caller sees the result, the same exception, or a clear line if it died."""
    assert in_fresh_process(os.getpid) != os.getpid()
    assert in_fresh_process(divmod, 7, 2) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        in_fresh_process(divmod, 1, 0)
    with pytest.raises(RuntimeError, match="the process running _exit ended abruptly \\(exit code 9"):
        in_fresh_process(os._exit, 9)
