"""The self-training pipeline on a real Prefect server: stages chain, a rerun is cached, a changed preference
setting (GRPO instead of DPO) reruns only that stage and its evaluation, and `selftrain pipeline` killed in each
stage and started again ends where the uninterrupted run did. Trained on josh-train's shipped trees (real data with
successes) with an untrained tiny model, for a few steps: the flow is under test, not the gain."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from prefect.settings import PREFECT_API_URL
from safetensors.torch import load_file

from cli.main import main
from core.config import build_config, knobs
from flows.pipeline_config import PipelineConfig
from core.errors import ConfigError
from flows.pipeline import REPORT, PipelineReport, pipeline
from models.embedded import build_random_model
from models.training import REPORT as TRAINED
from models.training import last_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["source=josh-trees", "sft.max_steps=3", "sft.save_steps=1", "sft.batch_size=2", "sft.logging_steps=1",
        "preference.max_steps=3", "preference.save_steps=1", "preference.batch_size=2", "preference.logging_steps=1",
        "evaluation.n_tasks=2", "evaluation.shard_size=1", "evaluation.max_messages=3",
        "evaluation.agent_sampling.max_new_tokens=12", "evaluation.user_sampling.max_new_tokens=12"]

RL = ["online_rl=true", "rl.n_tasks=2", "rl.steps=1", "rl.tasks_per_step=2", "rl.group_size=2",
      "rl.max_messages=3", "rl.agent_sampling.max_new_tokens=12"]


@pytest.fixture(scope="module")
def overrides(tmp_path_factory):
    base = build_random_model(tmp_path_factory.mktemp("base"))
    return [*TINY, f"agent.spec=hf:{base}", f"runs_dir={tmp_path_factory.mktemp('runs')}"]


@pytest.fixture(scope="module")
def uninterrupted(prefect_server, overrides):
    return pipeline(build_config(PipelineConfig, "pipeline", overrides))


def test_stages_chain_cache_and_rerun_only_what_a_change_touches(overrides, uninterrupted):
    first = uninterrupted
    assert [r["stage"] for r in first.table] == ["base", "sft", "dpo"]
    assert all(r["tasks"] == "2" for r in first.table)
    assert {k: v for k, v in first.stages.items() if k != "import-trees"} == {  # another test may have imported them
        "curate": "ran", "sft": "ran", "dpo": "ran", "evaluate base": "ran", "evaluate sft": "ran", "evaluate dpo": "ran"}
    run = Path(first.run_dir)
    assert (run / "stages.png").stat().st_size > 1000 and "Data Docs" in (run / "report.md").read_text()
    assert all((Path(p) / "adapter_config.json").is_file() for p in first.adapters.values())

    again = pipeline(build_config(PipelineConfig, "pipeline", overrides))
    assert set(again.stages.values()) == {"cached"}
    assert again.adapters == first.adapters

    online = pipeline(build_config(PipelineConfig, "pipeline", [*overrides, *RL]))  # RL instead of DPO, from SFT
    assert [r["stage"] for r in online.table] == ["base", "sft", "grpo"]
    assert {k for k, v in online.stages.items() if v == "ran"} == {"grpo", "evaluate grpo"}
    assert online.adapters["sft"] == first.adapters["sft"] and Path(online.adapters["grpo"]).is_dir()


# Where each kill lands: the line the run has just printed, in the stage (flow run) it interrupts. Training: step 2
# logged, so checkpoint 1 is whole and the second may be half-written; evaluation: a shard finished (its result
# stored), the other not yet.
KILLS = {"curate": (r"for flow 'curate'", "curate"), "sft": (r"sft step 2/", "sft"), "dpo": (r"dpo step 2/", "dpo"),
         "evaluation": (r"Task run 'simulate_dialogues-[^']*' - Finished in state Completed", "evaluate-base")}


def test_a_run_killed_in_every_stage_resumes_to_the_uninterrupted_result(overrides, uninterrupted, tmp_path):
    """SIGKILL during curation, SFT training, the preference step and evaluation, each followed by the same command:
    the curated sets, adapters and evaluation dialogues equal the uninterrupted run's. (During simulate:
    tests/test_simulate_flow.py.) The command has a cache and Prefect results of its own, so nothing it
    resumes from comes from the uninterrupted run; only the imported trees (its input) are shared."""
    cache = tmp_path / "cache"
    shutil.copytree(Path(os.environ["SELFTRAIN_CACHE_DIR"]) / "toolwoz", cache / "toolwoz", copy_function=os.link)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PREFECT_API_URL": PREFECT_API_URL.value(),
           "SELFTRAIN_CACHE_DIR": str(cache), "PREFECT_LOCAL_STORAGE_PATH": str(tmp_path / "results")}
    cmd = [sys.executable, "-m", "cli.main", "pipeline", *(a for s in overrides for a in ("--set", s))]
    for stage, (pattern, flow_run) in KILLS.items():
        log = _run_until_killed(cmd, env, tmp_path / f"killed-in-{stage}.log", pattern)
        assert f"Flow run '{flow_run}' - Finished" not in log, log[-3000:]
        if stage in ("sft", "dpo"):  # killed between checkpoints: one whole, the adapter not finished
            (run,) = (cache / "adapters").glob(f".{stage}-*.partial")  # the build folder, renamed when finished
            assert last_checkpoint(run) and not (run / TRAINED).exists()
    finished = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    resumed = PipelineReport.model_validate_json(
        (Path(finished.stdout.split("run folder:")[1].strip()) / REPORT).read_text())

    for kind in ("sft", "dpo"):
        assert json.loads((Path(resumed.adapters[kind]).parent / TRAINED).read_text())["resumed_from_step"] >= 1
        ours, theirs = _weights(resumed.adapters[kind]), _weights(uninterrupted.adapters[kind])
        assert ours.keys() == theirs.keys()
        assert all((ours[k] - theirs[k]).abs().max() < 1e-5 for k in ours), kind
        assert _rows(Path(resumed.curated) / kind) == _rows(Path(uninterrupted.curated) / kind), kind
    for stage in ("base", "sft", "dpo"):
        assert _rows(Path(resumed.evaluations[stage]) / "dialogues") == \
            _rows(Path(uninterrupted.evaluations[stage]) / "dialogues"), stage


def test_a_pruned_cache_is_built_again_to_the_same_figures(overrides, uninterrupted):
    """`selftrain cache prune` removes adapters, datasets and Prefect's stored results; the same pipeline then
    trains and evaluates again (nothing it finds points at what was removed) and prints the same table."""
    runs = next(o.split("=", 1)[1] for o in overrides if o.startswith("runs_dir="))
    assert main(["cache", "prune", "--older-than", "0", "--kind", "adapters", "--kind", "datasets",
                 "--kind", "results", "--runs-dir", runs]) == 0
    assert not any(Path(p).exists() for p in uninterrupted.adapters.values())
    again = pipeline(build_config(PipelineConfig, "pipeline", overrides))
    assert {k: v for k, v in again.stages.items() if k != "import-trees"} == {
        "curate": "ran", "sft": "ran", "dpo": "ran", "evaluate base": "ran", "evaluate sft": "ran", "evaluate dpo": "ran"}
    assert again.table == uninterrupted.table
    assert again.adapters == uninterrupted.adapters and all(Path(p).is_dir() for p in again.adapters.values())
    rerun = pipeline(build_config(PipelineConfig, "pipeline", overrides))  # what was built again is found and used
    assert {k: v for k, v in rerun.stages.items() if k != "import-trees"} == {k: "cached" for k in again.stages
                                                                                 if k != "import-trees"}


def _run_until_killed(cmd: list[str], env: dict, log: Path, pattern: str) -> str:
    """Start the command and SIGKILL it (it alone, as a crash would) as soon as its output matches `pattern`;
    what it printed."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 300
        while not re.search(pattern, log.read_text()) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert re.search(pattern, log.read_text()), log.read_text()[-3000:]
    return log.read_text()


def _weights(adapter: str) -> dict:
    return load_file(Path(adapter) / "adapter_model.safetensors")


def _rows(folder: Path) -> list[dict]:
    return datasets.load_from_disk(str(folder)).to_list()


def test_what_every_stage_shares_is_set_once():
    with pytest.raises(ConfigError, match="set agent at the top level, not evaluation.agent"):
        build_config(PipelineConfig, "pipeline", ["evaluation.agent.spec=embedded"])
    with pytest.raises(ConfigError, match="set benchmark at the top level, not simulate.benchmark"):
        build_config(PipelineConfig, "pipeline", ["simulate.benchmark=retail"])
    cfg = build_config(PipelineConfig, "retail", ["agent_prompt=full", "agent_format=tools"])
    for stage in ("simulate", "rl", "evaluation"):  # every stage runs with the pipeline's benchmark, format and prompt
        run = cfg.stage(stage)
        assert (run.benchmark, run.agent_format, run.agent_prompt, run.agent) == ("retail", "tools", "full", cfg.agent)
    keys = [line.split(" ")[0] for line in knobs(PipelineConfig)]
    assert "benchmark" in keys and not [k for k in keys if k.endswith((".benchmark", ".agent_prompt", ".agent_format"))]
    assert not [k for k in keys if k.startswith("rl.") and k.endswith(("runner.kind", "shard_size", "run_name"))]


def test_rounds_simulate_new_tasks_and_one_more_round_runs_only_itself(prefect_server, tmp_path_factory):
    """Rounds chain on disjoint training tasks and cache like the other stages (an untrained model harvests
    nothing, so each round simulates with the base: the chaining and caching are under test, not the gain)."""
    from core.records import read_jsonl

    base = build_random_model(tmp_path_factory.mktemp("base"))
    overrides = [f"agent.spec=hf:{base}", f"runs_dir={tmp_path_factory.mktemp('runs')}", "simulate.n_tasks=2",
                 "simulate.beam_size=2", "simulate.max_messages=3", "simulate.agent_sampling.max_new_tokens=12",
                 "simulate.personas.n=2", "evaluation.n_tasks=2", "evaluation.max_messages=3",
                 "evaluation.agent_sampling.max_new_tokens=12", "suites=[josh]"]
    two = pipeline(build_config(PipelineConfig, "pipeline", [*overrides, "rounds=2"]))
    assert two.stages == {"round 1 simulate": "ran", "round 1 curate": "ran", "round 2 simulate": "ran",
                          "round 2 curate": "ran", "evaluate base": "ran"}
    tasks = [{d.scenario.task_id for d in read_jsonl(Path(run) / "dialogues.jsonl")} for run in two.sources]
    assert len(tasks[0]) == len(tasks[1]) == 2 and not tasks[0] & tasks[1]
    assert set(two.harvest) == {"round 1", "round 2"} and all(h["dialogues"] == 2 for h in two.harvest.values())
    assert "Harvest per round" in (Path(two.run_dir) / "report.md").read_text()

    three = pipeline(build_config(PipelineConfig, "pipeline", [*overrides, "rounds=3"]))
    assert {k for k, v in three.stages.items() if v == "ran"} == {"round 3 simulate", "round 3 curate"}
    third = {d.scenario.task_id for d in read_jsonl(Path(three.sources[2]) / "dialogues.jsonl")}
    assert not third & (tasks[0] | tasks[1])


def test_rounds_need_josh():
    with pytest.raises(ConfigError, match="rounds=2 needs source=simulate"):
        build_config(PipelineConfig, "pipeline", ["rounds=2", "source=josh-trees"])
