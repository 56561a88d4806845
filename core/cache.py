"""What the project keeps on disk, listed and pruned: models, trained adapters and RL policies, the training sets
that self-training rounds put together, ToolWOZ's parsed data and transcripts, run folders, and Prefect's stored
task results.

A stage whose result is a folder (a model, an adapter, a dataset, imported trees) keeps it under a name
made of its fingerprint, built by `build_once`: the folder is the cache, a run that finds it touches it,
and a run that does not builds it again. A stage whose result is a value (a shard of dialogues, a metric
table) is cached by Prefect under `stored_result`'s key, which touches the stored file when a run reads it.
An entry's age therefore counts from its last use, and pruning by age removes only what no recent run
needed: whatever a later run asks for again is rebuilt. Run folders are outputs, never read back as a
cache. Names that start with a dot are builds in progress and are left alone.

A command that is still running may read again what it used earlier (an adapter it trained, a stored shard), so
prune keeps whatever was used since the oldest running command first used the cache: each such command holds a
lock on a file named by its process id under `.in-use/`, and the lock ends with the process however it ends.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from core.errors import ConfigError
from core.paths import cache_dir, state_dir

KINDS = ("models", "adapters", "datasets", "toolwoz", "runs", "results")
FILE_KINDS = ("toolwoz", "results")  # an entry is a file: ToolWOZ parsed from josh-train, a stored task result
DAY_S = 86400


@dataclass
class Entry:
    kind: str
    path: Path
    bytes: int
    last_used: float  # seconds since the epoch

    @property
    def age_days(self) -> float:
        return (time.time() - self.last_used) / DAY_S


def results_dir() -> Path:
    """Where Prefect stores the task results that are a stage's value (as `core.paths.configure_prefect` sets it)."""
    return Path(os.environ.get("PREFECT_LOCAL_STORAGE_PATH") or state_dir() / "results").expanduser()


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _kept(kind: str, runs_dir: Path) -> list[Path]:
    """The entries of a kind: folders, or files for `FILE_KINDS`."""
    parent = {"runs": runs_dir, "results": results_dir()}.get(kind, cache_dir() / kind)
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.glob("*") if not p.name.startswith(".") and (p.is_file() if kind in FILE_KINDS else p.is_dir()))


def entries(runs_dir: str | Path = "runs", kinds: tuple[str, ...] = KINDS) -> list[Entry]:
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ConfigError(f"unknown kind {', '.join(sorted(unknown))} (kinds: {', '.join(KINDS)})")
    return [Entry(kind, p, _size(p), p.stat().st_mtime) for kind in kinds for p in _kept(kind, Path(runs_dir))]


@dataclass
class Pruned:
    removed: list[Entry]
    in_use: list[Entry]  # not used for the days asked, but since a command still running began: kept
    users: list[int]  # the process ids of those commands (this one excepted)


def prune(older_than_days: float, runs_dir: str | Path = "runs", kinds: tuple[str, ...] = KINDS,
          dry_run: bool = False) -> Pruned:
    """Remove the entries not used for `older_than_days` nor since a running command first used the cache."""
    users = _running_users()
    since = min(users.values(), default=float("inf")) - 1.0  # file times and the clock may round apart
    old = [e for e in entries(runs_dir, kinds) if e.age_days > older_than_days]
    removed = [e for e in old if e.last_used < since]
    if not dry_run:
        removed = [e for e in removed if _remove_unless_just_used(e.path, since)]
    return Pruned(removed, [e for e in old if e not in removed], sorted(users))


def _remove_unless_just_used(path: Path, since: float) -> bool:
    """Remove `path` unless a running command found it after the listing (or it is gone); whether it was removed."""
    try:
        if path.stat().st_mtime >= since:
            return False
    except FileNotFoundError:
        return False
    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return True


def reuse(path: Path) -> bool:
    """Whether `path` is kept; if so it is marked used now, and prune leaves it to this process while it runs. False
    when it was never built or was pruned: the caller builds it (again)."""
    _register_use()
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


_registrations: dict[Path, IO] = {}  # the in-use file this process holds locked, per cache folder


def _register_use() -> None:
    """Hold a lock on `.in-use/<pid>` while this process lives; its modification time is when it began to use the
    cache. Once per process and cache folder."""
    folder = cache_dir() / ".in-use"
    if folder in _registrations:
        return
    folder.mkdir(parents=True, exist_ok=True)
    held = open(folder / str(os.getpid()), "w")
    fcntl.flock(held, fcntl.LOCK_EX)
    os.utime(held.fileno())
    _registrations[folder] = held


def _running_users() -> dict[int, float]:
    """Other processes that use the cache now, with when each began; the files of ended ones are removed."""
    folder = cache_dir() / ".in-use"
    users = {}
    for file in folder.glob("[0-9]*") if folder.is_dir() else ():
        if int(file.name) == os.getpid():
            continue
        with open(file, "a") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                users[int(file.name)] = file.stat().st_mtime
                continue
            file.unlink(missing_ok=True)  # its process has ended: the lock was free
    return users


def stored_result(key: str) -> str:
    """`key` as a Prefect cache key; the result stored under it, if any, is marked used now (a run reads it)."""
    reuse(results_dir() / key)
    return key


def by_fingerprint(_context, parameters: dict) -> str:
    """Prefect `cache_key_fn` of a task whose `fingerprint` parameter says everything its value depends on."""
    return stored_result(parameters["fingerprint"])


def build_once(final: Path, build: Callable[[Path], None], resumable: bool = False) -> Path:
    """`final`, built by `build(folder)` if it is not there yet: into a dot-named folder beside it, then renamed, so a
    killed build never leaves half a folder under the real name. One builder at a time (a lock beside it): a second
    one waits, then finds `final`. A `resumable` build finds what a killed one left in its folder (its checkpoints)
    and goes on from there; any other build starts from an empty folder. A `final` found is touched: used now."""
    if reuse(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.parent / f".{final.name}.partial"
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():  # built by the builder we waited for
            return final
        if partial.exists() and not resumable:
            shutil.rmtree(partial)
        partial.mkdir(exist_ok=True)
        build(partial)
        os.chmod(partial, 0o755)
        os.rename(partial, final)
    (final.parent / f".{final.name}.lock").unlink(missing_ok=True)
    return final
