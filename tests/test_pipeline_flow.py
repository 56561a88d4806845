"""The self-training pipeline on a real Prefect server: stages chain, a rerun is cached, and a changed
DPO setting reruns only DPO and its evaluation. Trained on josh-train's shipped trees (real data with
successes) with an untrained tiny model, for a few steps: the flow is under test, not the gain."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import PipelineConfig, build_config
from core.errors import ConfigError
from flows.pipeline import pipeline
from models.embedded import build_random_model

TINY = ["source=josh-trees", "sft.max_steps=2", "sft.batch_size=2", "sft.logging_steps=1", "preference.max_steps=2",
        "preference.batch_size=2", "preference.logging_steps=1", "evaluation.n_tasks=2", "evaluation.max_messages=3",
        "evaluation.agent_sampling.max_new_tokens=12", "evaluation.user_sampling.max_new_tokens=12"]


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

    changed = pipeline(build_config(PipelineConfig, "pipeline", [*overrides, "preference.beta=0.5"]))
    assert {k for k, v in changed.stages.items() if v == "ran"} == {"dpo", "evaluate dpo"}
    assert changed.adapters["sft"] == first.adapters["sft"] and changed.adapters["dpo"] != first.adapters["dpo"]


def test_roles_are_set_once_for_every_stage():
    with pytest.raises(ConfigError, match="set agent.\\* at the top level, not evaluation.agent"):
        build_config(PipelineConfig, "pipeline", ["evaluation.agent.spec=embedded"])
