"""What the project keeps on disk, listed and pruned: embedded models, trained adapters, the training sets
that self-training rounds put together, run folders.

An entry's age counts from its last use: a reused embedded model or adapter is touched, so
pruning by age removes what no recent run needed. A removed model, adapter or dataset is simply built
again when a run asks for it; run folders are outputs, never read back as a cache. Folders whose
name starts with a dot are builds in progress and are left alone.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError
from core.paths import cache_dir

KINDS = ("models", "adapters", "datasets", "runs")
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


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _folders(kind: str, runs_dir: Path) -> list[Path]:
    parent = runs_dir if kind == "runs" else cache_dir() / kind
    return sorted(p for p in parent.glob("*") if p.is_dir() and not p.name.startswith(".")) if parent.is_dir() else []


def entries(runs_dir: str | Path = "runs", kinds: tuple[str, ...] = KINDS) -> list[Entry]:
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ConfigError(f"unknown kind {', '.join(sorted(unknown))} (kinds: {', '.join(KINDS)})")
    return [Entry(kind, p, _size(p), p.stat().st_mtime) for kind in kinds for p in _folders(kind, Path(runs_dir))]


def prune(older_than_days: float, runs_dir: str | Path = "runs", kinds: tuple[str, ...] = KINDS,
          dry_run: bool = False) -> list[Entry]:
    """Remove the entries not used for `older_than_days`; returns them."""
    old = [e for e in entries(runs_dir, kinds) if e.age_days > older_than_days]
    for entry in old if not dry_run else ():
        shutil.rmtree(entry.path)
    return old


def touch(path: Path) -> None:
    """Mark a cached folder as used now."""
    path.touch(exist_ok=True)


def build_once(final: Path, build: Callable[[Path], None], resumable: bool = False) -> Path:
    """`final`, built by `build(folder)` if it is not there yet: into a dot-named folder beside it, then renamed, so a
    killed build never leaves half a folder under the real name. One builder at a time (a lock beside it): a second
    one waits, then finds `final`. A `resumable` build finds what a killed one left in its folder (its checkpoints)
    and goes on from there; any other build starts from an empty folder."""
    if final.is_dir():
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
