"""A call run in a process of its own: what the child held ends with it, what it returned or raised comes back."""

import os

import pytest

from core.processes import in_fresh_process


def test_a_build_in_a_fresh_process_returns_its_result_and_its_errors():
    """What a child holds ends with it; the caller sees the result, the same exception, or a clear line if it died."""
    assert in_fresh_process(os.getpid) != os.getpid()
    assert in_fresh_process(divmod, 7, 2) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        in_fresh_process(divmod, 1, 0)
    with pytest.raises(RuntimeError, match="the process running _exit ended abruptly \\(exit code 9"):
        in_fresh_process(os._exit, 9)
