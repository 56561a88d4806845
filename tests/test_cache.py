"""Listing and pruning what the project keeps on disk: by kind and by days since last use."""

import os
import time

import pytest

from core import cache
from cli.main import main
from core.errors import ConfigError


def _folder(path, days_old: float, size: int = 10):
    path.mkdir(parents=True)
    (path / "weights.bin").write_bytes(b"x" * size)
    then = time.time() - days_old * cache.DAY_S
    os.utime(path, (then, then))
    return path


def _stored(path, days_old: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"pickled")
    then = time.time() - days_old * cache.DAY_S
    os.utime(path, (then, then))
    return path


def test_prune_removes_only_what_was_not_used_recently(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SELFTRAIN_CACHE_DIR", str(tmp_path / "cache"))  # not the test session's cache: prune deletes
    root, runs = cache.cache_dir(), tmp_path / "runs"
    old_model = _folder(root / "models" / "embedded-old", 40, size=1000)
    used_model = _folder(root / "models" / "embedded-used", 40)
    _folder(root / "models" / ".embedded-building", 40)  # a build in progress
    new_adapter = _folder(root / "adapters" / "sft-new", 1)
    old_rows = _folder(root / "datasets" / "sft-old", 35)  # what two self-training rounds kept, put together
    old_run = _folder(runs / "simulate-old", 31)
    monkeypatch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(tmp_path / "results"))
    old_result, read_result = (_stored(tmp_path / "results" / key, 60) for key in ("a" * 64, "b" * 64))
    cache.touch(used_model)  # reused by a run today
    assert cache.by_fingerprint(None, {"fingerprint": "b" * 64}) == "b" * 64  # a Prefect task looks its result up

    listed = {e.path.name: e for e in cache.entries(runs)}
    assert set(listed) == {"embedded-old", "embedded-used", "sft-new", "sft-old", "simulate-old", "a" * 64, "b" * 64}
    assert listed["embedded-old"].bytes == 1000 and listed["embedded-old"].age_days > 39
    assert listed["a" * 64].kind == "results" and listed["a" * 64].bytes == 7

    assert [e.path for e in cache.prune(30, runs, dry_run=True)] == [old_model, old_rows, old_run, old_result]
    assert old_model.exists() and read_result.exists()
    assert main(["cache", "prune", "--older-than", "30", "--kind", "models", "--runs-dir", str(runs)]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert not old_model.exists() and old_run.exists() and used_model.exists() and new_adapter.exists()
    assert (root / "models" / ".embedded-building").exists()
    assert main(["cache", "prune", "--older-than", "30", "--kind", "results"]) == 0
    assert not old_result.exists() and read_result.exists()


def test_an_unknown_kind_is_named():
    with pytest.raises(ConfigError, match="unknown kind checkpoints"):
        cache.entries(kinds=("checkpoints",))


def test_toolwoz_data_that_a_run_reads_counts_as_used(tmp_path, monkeypatch, toolwoz):
    from envs.toolwoz import data

    parsed = data._cache_path().read_bytes()  # the session's, built by the fixture
    monkeypatch.setenv("SELFTRAIN_CACHE_DIR", str(tmp_path / "cache"))
    stale = _stored(data._cache_path(), 40)
    stale.write_bytes(parsed)
    os.utime(stale, (time.time() - 40 * cache.DAY_S,) * 2)
    (entry,) = cache.entries(kinds=("toolwoz",))
    assert entry.path == stale and entry.age_days > 39
    data.load_toolwoz.cache_clear()
    try:
        assert data.load_toolwoz().tasks.keys() == toolwoz.tasks.keys()  # read back, not rebuilt
    finally:
        data.load_toolwoz.cache_clear()
    assert cache.prune(30, kinds=("toolwoz",)) == []
