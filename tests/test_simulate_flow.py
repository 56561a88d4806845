"""The simulate flow on a real Prefect server: datasets saved, shards cached, a killed run resumes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

from core.config import build_config
from roleplay.config import SimulateConfig
from flows.simulate import simulate
from models.embedded import build_random_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Both roles played by an untrained tiny model: the flow's behaviour, not the model's, is under test."""
    path = build_random_model(tmp_path_factory.mktemp("model"))
    return [f"agent.spec=hf:{path}", f"user.spec=hf:{path}", "n_tasks=4", "shard_size=2", "beam_size=4",
            "max_messages=3", "agent_sampling.max_new_tokens=12", "user_sampling.max_new_tokens=12", "personas.n=6"]


def test_simulate_saves_every_dataset_and_reuses_finished_shards(prefect_server, tmp_path, small):
    cfg = build_config(SimulateConfig, "simulate", [*small, f"runs_dir={tmp_path}"])
    first = simulate(cfg)
    assert len(list(tmp_path.glob("personas-*/personas"))) == 1  # the personas it drew are saved beside its run
    assert first.shards == 2 and first.cached_shards == 0 and not first.cached
    assert first.counts["dialogues"] == 4 and first.counts["trees"] >= 4
    run = Path(first.run_dir)
    for name in ("dialogues", "trees", "sft", "dpo", "kto"):
        assert (run / name / "dataset_info.json").is_file()
    nodes = datasets.load_from_disk(str(run / "trees"))
    assert len(nodes) == first.counts["trees"] and {"messages", "is_successful", "is_golden"} <= set(nodes.column_names)
    dialogues = datasets.load_from_disk(str(run / "dialogues"))
    assert all(p is not None for p in dialogues["persona_text"])  # every scenario is played by a persona
    assert "SFT examples" in (run / "report.md").read_text()

    again = simulate(cfg)
    assert again.cached and again.cached_shards == 2 and again.counts == first.counts


def test_shards_on_a_local_dask_cluster_of_two_workers_give_the_datasets_of_the_default_runner(
        prefect_server, tmp_path, small, monkeypatch):
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())  # what the Dask workers report to
    same = [*small, "agent.cpu_threads=1", "user.cpu_threads=1"]
    local = simulate(build_config(SimulateConfig, "simulate", [*same, f"runs_dir={tmp_path / 'local'}"]))
    monkeypatch.setenv("PREFECT_TASKS_REFRESH_CACHE", "true")  # the workers recompute every shard
    on_dask = simulate(build_config(SimulateConfig, "simulate", [*same, f"runs_dir={tmp_path / 'dask'}",
                                                                  "runner.kind=dask", "runner.workers=2"]))
    assert on_dask.shards == 2 and on_dask.cached_shards == 0
    for name in ("trees", "dialogues", "sft", "dpo", "kto"):
        assert datasets.load_from_disk(f"{on_dask.run_dir}/{name}").to_list() == \
            datasets.load_from_disk(f"{local.run_dir}/{name}").to_list(), name


def test_a_cluster_runner_without_a_server_is_refused(monkeypatch):
    from core.config import RunnerConfig
    from core.errors import ConfigError
    from tasks.runners import task_runner

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(ConfigError, match="runner.kind=dask needs a Prefect server"):
        task_runner(RunnerConfig(kind="dask"))


def test_killed_run_resumes_with_finished_shards_cached(prefect_server, tmp_path, small):
    cmd = [sys.executable, "-m", "cli.main", "simulate", *(a for s in small for a in ("--set", s)),
           "--set", "n_tasks=6", "--set", f"runs_dir={tmp_path}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "first.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 300
        # shard 1 running means shard 0's result is stored ("shard 0:" is logged before its result is written)
        while "shard 1:" not in log.read_text() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        children = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # the command alone: its Prefect server must not outlive it
        proc.wait()
    assert "shard 1:" in log.read_text(), log.read_text()[-2000:]
    deadline = time.time() + 30
    while (left := [p for p in children if _running(p)]) and time.time() < deadline:
        time.sleep(0.5)
    assert len(children) >= 2 and not left, (children, left)  # the server and the watcher, both gone

    resumed = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert 1 <= _cached_shards(resumed.stdout) < 3  # shard 0 (at least) was read back, not redone

    with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}):  # an uninterrupted run, every shard computed
        fresh = simulate(build_config(SimulateConfig, "simulate", [*small, "n_tasks=6", f"runs_dir={tmp_path / 'fresh'}"]))
    assert fresh.cached_shards == 0
    for name in ("trees", "dialogues", "sft", "dpo"):
        resumed_rows = datasets.load_from_disk(str(_run_folder(resumed.stdout) / name)).to_list()
        assert resumed_rows == datasets.load_from_disk(f"{fresh.run_dir}/{name}").to_list()


def _children(pid: int) -> list[int]:
    """The processes `pid` started that are running (its Prefect server, the watcher of its run)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def _run_folder(stdout: str) -> Path:
    return Path(next(line for line in stdout.splitlines() if "run folder:" in line).split("run folder:")[1].strip())


def _cached_shards(stdout: str) -> int:
    line = next(line for line in stdout.splitlines() if "shards cached" in line)
    return int(line.split()[-3])  # "shards cached  N of M"
