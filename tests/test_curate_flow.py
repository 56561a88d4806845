"""The curate flow on a real Prefect server: kept / dropped datasets with reasons, training sets
filtered with their dialogues, funnel and Data Docs, caching, a bad batch failing the run, threads."""

from __future__ import annotations

from pathlib import Path

import datasets
import pandas as pd
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.task_runners import ThreadPoolTaskRunner

from core import records
from core.config import CurateConfig
from core.errors import QualityGateError
from core.types import Dialogue, Message, Outcome, Scenario, Termination
from flows.curate import curate
from quality.dialogue_table import dialogue_table
from quality.suites import load_suite
from quality.validation import filter_rows
from tasks.curation import curate_fingerprint, measure_and_filter
from formats.react import format_speak


def _dialogue(task: str, reward: float, error: bool = False) -> Dialogue:
    turns = [Message(role="user", content=f"I want a cheap hotel in the north, task {task}, on {task}day."),
             Message(role="assistant", content=format_speak(f"Booked {task} for you, reference {task}X.")),
             Message(role="user", content="Thanks! END_CONVERSATION")]
    if error:
        turns.insert(1, Message(role="tool", content="ERROR: INVALID API CALL! bad parameters"))
    return Dialogue(scenario=Scenario(domain="toolwoz", task_id=task, instruction="book a hotel"), messages=tuple(turns),
                    outcome=Outcome(reward=reward, success=reward == 1.0, termination=Termination.user_ended, turns=3))


def _source_run(folder: Path, dialogues: list[Dialogue]) -> str:
    """A run folder as a simulate run leaves it: dialogues, and training rows that name their dialogue."""
    records.write_jsonl(dialogues, folder / "dialogues.jsonl")
    chat = [{"role": "user", "content": "hi"}]
    rows = {"sft": [{"scenario_id": d.id, "task_id": d.scenario.task_id, "reward": 1.0, "messages": chat} for d in dialogues],
            "dpo": [{"scenario_id": d.id, "task_id": d.scenario.task_id, "prompt": chat, "chosen": chat, "rejected": chat}
                    for d in dialogues for _ in range(2)],
            "kto": [{"scenario_id": d.id, "task_id": d.scenario.task_id, "prompt": chat, "completion": chat, "label": True}
                    for d in dialogues]}
    for name, table in rows.items():
        records.training_dataset(name, table).save_to_disk(str(folder / name), num_shards=1)
    return str(folder)


def _artifact_keys():
    wanted = ["curate-funnel", "curate-batch-checks", "curate-report", "curate-data-docs"]
    with get_client(sync_client=True) as client:
        return {a.key for a in client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=wanted)))}


def test_curate_keeps_the_good_dialogues_and_every_dropped_one_keeps_its_reasons(prefect_server, tmp_path):
    dialogues = [_dialogue("d1", 1.0), _dialogue("d2", 0.5), _dialogue("d3", 1.0, error=True), _dialogue("d4", 1.0)]
    cfg = CurateConfig(source=_source_run(tmp_path / "sim", dialogues), runs_dir=str(tmp_path / "runs"))
    report = curate(cfg)
    run = Path(report.run_dir)
    assert report.counts["kept"] == 2 and report.counts["dropped"] == 2 and not report.cached

    kept = datasets.load_from_disk(str(run / "kept"))
    dropped = datasets.load_from_disk(str(run / "dropped"))
    assert kept["id"] == ["toolwoz/d1", "toolwoz/d4"]
    assert dict(zip(dropped["id"], dropped["reasons"])) == {"toolwoz/d2": ["reward_below_full"],
                                                            "toolwoz/d3": ["error_on_path"]}
    assert len(records.dialogues_from_dataset(dropped.remove_columns(["reasons", "warnings"]))) == 2  # nothing lost
    rows = datasets.load_from_disk(str(run / "sft"))
    assert sorted(rows["scenario_id"]) == ["toolwoz/d1", "toolwoz/d4"]
    for name, per_dialogue in (("dpo", 2), ("kto", 1)):  # JOSH's filter gates SFT only: every dialogue's pairs stay
        rows = datasets.load_from_disk(str(run / name))
        assert sorted(rows["scenario_id"]) == sorted([d.id for d in dialogues] * per_dialogue)
    table = pd.read_parquet(run / "metrics.parquet")
    assert table["kept"].tolist() == [True, False, False, True]

    assert [(r["reason"], r["rows left"]) for r in report.funnel if r["suite"] == "josh"] == [
        ("reward_below_full", "3"), ("error_on_path", "2")]
    assert "| josh | error_on_path | critical | sft | 1 | 2 |" in (run / "report.md").read_text()
    index = Path(report.data_docs)
    assert index.is_file() and "roleplay.rows" in index.read_text()
    assert _artifact_keys() == {"curate-funnel", "curate-batch-checks", "curate-report", "curate-data-docs"}

    again = curate(cfg)
    assert again.cached and again.counts == report.counts and again.run_dir != report.run_dir


def test_a_bad_batch_fails_the_flow_naming_the_expectation_and_keeps_the_datasets(prefect_server, tmp_path):
    cfg = CurateConfig(source=_source_run(tmp_path / "sim", [_dialogue(f"d{i}", 0.0) for i in range(3)]),
                       runs_dir=str(tmp_path / "runs"), run_name="bad")
    with pytest.raises(QualityGateError, match=r"batch\.too_few_kept \(kept_share = 0\.0"):
        curate(cfg)
    dropped = datasets.load_from_disk(str(tmp_path / "runs" / "bad" / "dropped"))
    assert len(dropped) == 3 and all(r == ["reward_below_full"] for r in dropped["reasons"])


def test_two_curate_tasks_at_once_agree_with_one_after_the_other(prefect_server, tmp_path):
    batches = [[_dialogue(f"a{i}", 1.0 if i % 2 else 0.5) for i in range(40)],
               [_dialogue(f"b{i}", 1.0, error=i % 3 == 0) for i in range(40)]]
    suites = [load_suite("roleplay"), load_suite("josh")]
    serial = [filter_rows(dialogue_table(b), suites).dropped for b in batches]
    cfgs = [CurateConfig(source=_source_run(tmp_path / f"s{i}", b)) for i, b in enumerate(batches)]

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def both():
        futures = [measure_and_filter.submit(c, b, suites, curate_fingerprint(c, suites) + "-threads")
                   for c, b in zip(cfgs, batches)]
        return [f.result().verdicts.dropped for f in futures]

    assert both() == serial
