"""The self-training pipeline on a real Prefect server: stages chain, a rerun is cached, and a changed
preference setting (GRPO instead of DPO) reruns only that stage and its evaluation. Trained on josh-train's shipped trees (real data with
successes) with an untrained tiny model, for a few steps: the flow is under test, not the gain."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import build_config
from flows.pipeline_config import PipelineConfig
from core.errors import ConfigError
from flows.pipeline import pipeline
from models.embedded import build_random_model

TINY = ["source=josh-trees", "sft.max_steps=2", "sft.batch_size=2", "sft.logging_steps=1", "preference.max_steps=2",
        "preference.batch_size=2", "preference.logging_steps=1", "evaluation.n_tasks=2", "evaluation.max_messages=3",
        "evaluation.agent_sampling.max_new_tokens=12", "evaluation.user_sampling.max_new_tokens=12"]

RL = ["preference.method=grpo", "rl.n_tasks=2", "rl.steps=1", "rl.tasks_per_step=2", "rl.group_size=2",
      "rl.max_messages=3", "rl.agent_sampling.max_new_tokens=12"]


@pytest.fixture(scope="module")
def overrides(tmp_path_factory):
    base = build_random_model(tmp_path_factory.mktemp("base"))
    return [*TINY, f"agent.spec=hf:{base}", f"runs_dir={tmp_path_factory.mktemp('runs')}"]


def test_stages_chain_cache_and_rerun_only_what_a_change_touches(prefect_server, overrides):
    first = pipeline(build_config(PipelineConfig, "pipeline", overrides))
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


def test_roles_are_set_once_for_every_stage():
    with pytest.raises(ConfigError, match="set agent.\\* at the top level, not evaluation.agent"):
        build_config(PipelineConfig, "pipeline", ["evaluation.agent.spec=embedded"])


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
