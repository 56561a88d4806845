"""Where things land: runs, caches, and Prefect's own state, all overridable by environment.

- runs:   one folder per run (datasets, reports), under the configured runs directory;
- cache:  built data and models, under the user cache directory (shared by runs);
- state:  PREFECT_HOME and result storage, inside the checkout, so a checkout never writes
          into ~/.prefect and tests (which point it at a temp dir) never read a developer's.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import platformdirs

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    return Path(os.environ.get("SELFTRAIN_CACHE_DIR") or platformdirs.user_cache_dir("selftrain"))


def state_dir() -> Path:
    return Path(os.environ.get("SELFTRAIN_STATE_DIR") or PROJECT_ROOT / ".state")


def configure_prefect() -> None:
    """Point Prefect at the project's state dir; must run before `prefect` is imported.

    Values already set in the environment win, so a user's own Prefect server still works.
    """
    state = state_dir()
    os.environ.setdefault("PREFECT_HOME", str(state / "prefect"))
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(state / "results"))
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # a first start migrates its DB
    for key in ("PREFECT_HOME", "PREFECT_LOCAL_STORAGE_PATH"):
        Path(os.environ[key]).expanduser().mkdir(parents=True, exist_ok=True)


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    """A fresh folder for one run; a second run with the same name gets a numbered sibling."""
    base = Path(runs_dir) / name
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def write_atomically(path: Path, text: str | Iterable[str]) -> Path:
    """Write via a unique temp file and rename, so readers never see half a file (a killed run leaves none under
    the real name). `text` may come in pieces, so a large file is never held whole in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.writelines([text] if isinstance(text, str) else text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
