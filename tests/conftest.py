"""Test isolation: every test session gets its own cache, Prefect home and result storage.

Set before anything imports prefect, so no test reads a developer's cache or ~/.prefect.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_root = Path(tempfile.mkdtemp(prefix="selftrain-tests-"))
atexit.register(shutil.rmtree, _root, ignore_errors=True)
os.environ["SELFTRAIN_CACHE_DIR"] = str(_root / "cache")
os.environ["SELFTRAIN_STATE_DIR"] = str(_root / "state")
for _key in ("PREFECT_HOME", "PREFECT_LOCAL_STORAGE_PATH", "PREFECT_API_URL"):
    os.environ.pop(_key, None)

from core.paths import configure_prefect  # noqa: E402

configure_prefect()

import pytest  # noqa: E402

from core.types import Generation  # noqa: E402
from models.base import ChatModel  # noqa: E402


@pytest.fixture(scope="session")
def toolwoz():
    from envs.toolwoz.data import load_toolwoz

    return load_toolwoz()


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield



class Scripted(ChatModel):
    """A stand-in chat model that answers from a script: `script(prompt)`, or `script(i, prompt)` with
    `by_position` (i: the prompt's place in the batch). Records every prompt and each call's batch size."""

    PROMPT_TOKENS, COMPLETION_TOKENS = 10, 5  # reported per generation, so usage sums can be checked

    def __init__(self, script, spec="scripted", by_position=False):
        self.script, self.spec, self.by_position = script, spec, by_position
        self.prompts, self.batches = [], []

    def generate(self, prompts, sampling, n=1, tools=None):
        self.prompts += prompts
        self.batches.append(len(prompts))
        answer = self.script if self.by_position else lambda _, prompt: self.script(prompt)
        return [[Generation(answer(i, p), self.PROMPT_TOKENS, self.COMPLETION_TOKENS) for _ in range(n)]
                for i, p in enumerate(prompts)]

    def fingerprint(self):
        return self.spec
