"""Listing and pruning what the project keeps on disk: by kind and by days since last use."""

import os
import subprocess
import sys
import time
from pathlib import Path

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
    assert cache.reuse(used_model)  # reused by a run today
    assert cache.by_fingerprint(None, {"fingerprint": "b" * 64}) == "b" * 64  # a Prefect task looks its result up

    listed = {e.path.name: e for e in cache.entries(runs)}
    assert set(listed) == {"embedded-old", "embedded-used", "sft-new", "sft-old", "simulate-old", "a" * 64, "b" * 64}
    assert listed["embedded-old"].bytes == 1000 and listed["embedded-old"].age_days > 39
    assert listed["a" * 64].kind == "results" and listed["a" * 64].bytes == 7

    assert [e.path for e in cache.prune(30, runs, dry_run=True).removed] == [old_model, old_rows, old_run, old_result]
    assert old_model.exists() and read_result.exists()
    assert main(["cache", "prune", "--older-than", "30", "--kind", "models", "--runs-dir", str(runs)]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert not old_model.exists() and old_run.exists() and used_model.exists() and new_adapter.exists()
    assert (root / "models" / ".embedded-building").exists()
    assert main(["cache", "prune", "--older-than", "30", "--kind", "results"]) == 0
    assert not old_result.exists() and read_result.exists()


def test_prune_leaves_a_running_command_what_it_has_used_and_takes_it_once_the_command_ends(tmp_path, capsys,
                                                                                           monkeypatch):
    """`--older-than 0` beside a running pipeline: the adapter that run found (and will load again) stays."""
    monkeypatch.setenv("SELFTRAIN_CACHE_DIR", str(tmp_path / "cache"))  # the command below inherits it
    earlier = _folder(cache.cache_dir() / "adapters" / "sft-earlier", 1)  # last used before the command began
    found = _folder(cache.cache_dir() / "adapters" / "sft-found", 1)
    reuse = "import sys; from pathlib import Path; from core import cache; print(cache.reuse(Path(sys.argv[1])), " \
            "flush=True); sys.stdin.read()"
    command = subprocess.Popen([sys.executable, "-c", reuse, str(found)], cwd=Path(__file__).parents[1],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert command.stdout.readline() == "True\n"
        assert main(["cache", "prune", "--older-than", "0", "--kind", "adapters"]) == 0
    finally:
        command.stdin.close()
        command.wait()
    out = capsys.readouterr().out
    assert "removed 1 entries" in out and "kept 1 older entries that running commands have used" in out, out
    assert f"(process {command.pid})" in out
    assert not earlier.exists() and found.exists()
    assert [e.path for e in cache.prune(0, kinds=("adapters",)).removed] == [found]  # the command has ended
    assert not (cache.cache_dir() / ".in-use" / str(command.pid)).exists()


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
    assert cache.prune(30, kinds=("toolwoz",)).removed == []
