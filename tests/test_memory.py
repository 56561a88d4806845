"""Memory a stage freed goes back to the system: without `release`, glibc keeps it and a pipeline's stages stack up."""

import sys

import pytest

from core.memory import release


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
