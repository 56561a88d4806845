"""Test isolation: every test session gets its own cache, Prefect home and result storage.

Set before anything imports prefect, so no test reads a developer's cache or ~/.prefect.
"""

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

_root = Path(tempfile.mkdtemp(prefix="selftrain-tests-"))
atexit.register(shutil.rmtree, _root, ignore_errors=True)
os.environ["SELFTRAIN_CACHE_DIR"] = str(_root / "cache")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command sets it (cli/__init__.py): before torch loads
os.environ["SELFTRAIN_STATE_DIR"] = str(_root / "state")
for _key in ("PREFECT_HOME", "PREFECT_LOCAL_STORAGE_PATH", "PREFECT_API_URL"):
    os.environ.pop(_key, None)

from core.paths import configure_prefect  # noqa: E402

configure_prefect()

import pytest  # noqa: E402

from core.types import Generation  # noqa: E402
from models.base import ChatModel  # noqa: E402


def _orphans() -> list[str]:
    """Processes this session started (they carry its state dir in their environment) that outlived their parent:
    no longer descendants of this process, nobody will stop them (a killed CLI's Prefect server, say)."""
    marker = f"SELFTRAIN_STATE_DIR={_root / 'state'}".encode()
    parents, ours = {}, []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                ours.append((int(proc.name), (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:150]))
        except (OSError, IndexError, ValueError):
            continue

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == os.getpid():
                return True
            pid = parents.get(pid, 0)
        return False

    return [f"{pid}: {cmd}" for pid, cmd in ours if not descends(pid)]


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind():
    """Servers and workers end with what started them: at the end of the session, none of its processes is orphaned."""
    yield
    deadline = time.time() + 15
    while (left := _orphans()) and time.time() < deadline:
        time.sleep(0.5)
    assert not left, "processes started by the tests outlived them:\n" + "\n".join(left)


@pytest.fixture(scope="session")
def toolwoz():
    from envs.toolwoz.data import load_toolwoz

    return load_toolwoz()


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random-weight model of the embedded architecture, saved locally: the agent or customer of a smoke run."""
    from models.embedded import build_random_model

    return build_random_model(tmp_path_factory.mktemp("model"))



class Scripted(ChatModel):
    """A stand-in chat model that answers from a script: `script(prompt)`, or `script(i, prompt)` with
    `by_position` (i: the prompt's place in the batch). Records every prompt and each call's batch size."""

    PROMPT_TOKENS, COMPLETION_TOKENS = 10, 5  # reported per generation, so usage sums can be checked

    def __init__(self, script, spec="scripted", by_position=False):
        self.script, self.spec, self.by_position = script, spec, by_position
        self.prompts, self.batches = [], []

    def generate(self, prompts, sampling, n=1, tools=None, grammar=None):
        self.prompts += prompts
        self.batches.append(len(prompts))
        answer = self.script if self.by_position else lambda _, prompt: self.script(prompt)
        return [[Generation(answer(i, p), self.PROMPT_TOKENS, self.COMPLETION_TOKENS) for _ in range(n)]
                for i, p in enumerate(prompts)]

    def fingerprint(self):
        return self.spec
