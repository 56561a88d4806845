"""JOSH on tau-bench retail training tasks feeds the same curate and train path as ToolWOZ: sub-goals are the
ground-truth actions (name and arguments), a sibling that skips one is cut and becomes the rejected side of a
pair, a branch that does them all is a golden path for SFT; curation keeps them and QLoRA SFT trains on them.
The agent is an `openai:` endpoint (a local HTTP server) that makes the right next call the first time a prompt
is seen and ends its turn without it the second time, so sibling branches differ."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import datasets

from core.config import CurateConfig, ModelConfig, SFTConfig, build_config
from roleplay.config import SimulateConfig
from envs.taubench.data import load_tasks
from envs.taubench.user import agenda
from flows.curate import curate
from flows.simulate import simulate
from flows.train import sft
from envs.registry import select_tasks
from models.embedded import build_random_model
from chat_server import ChatServer


def _call(name: str, arguments: dict) -> str:
    return f"APICALL {json.dumps({'name': name, 'parameters': arguments})} <COMMAND_END>"


class GroundTruthAgent:
    """Replies to a retail prompt with the task's next ground-truth call (the task found by the customer's first
    sentence), or words without it the second time the same prompt comes; SPEAK once every action is made."""

    def __init__(self, task_ids: list[str]):
        tasks = [t for t in load_tasks("retail", "train") if t.id in task_ids]
        self.tasks = {agenda(t.instruction)[0]: t for t in tasks}
        assert len(self.tasks) == len(tasks), "two tasks open with the same sentence"
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, body: dict) -> str:
        messages = body["messages"]
        task = self.tasks[messages[1]["content"]]
        made = 0
        for m in messages:
            if m["role"] == "assistant" and made < len(task.actions) and m["content"] == _call(
                    task.actions[made].name, task.actions[made].kwargs):
                made += 1
        if made == len(task.actions):
            return "SPEAK Done. " + " ".join(task.outputs) + " <COMMAND_END>"
        with self.lock:
            key = json.dumps(messages)
            self.seen[key] = self.seen.get(key, 0) + 1
            first = self.seen[key] == 1
        action = task.actions[made]
        return _call(action.name, action.kwargs) if first else "SPEAK One moment, please. <COMMAND_END>"


def test_josh_on_retail_training_tasks_harvests_golden_paths_and_pairs_that_curation_keeps_and_sft_trains_on(
        prefect_server, tmp_path):
    with ChatServer(reply=GroundTruthAgent(select_tasks("retail", "train", 3, 0))) as server:
        cfg = build_config(SimulateConfig, "simulate", [
            "benchmark=retail", "split=train", "n_tasks=3", "beam_size=2", "max_agent_steps=12", "max_messages=5",
            "personas.n=3", "agent.spec=openai:tiny", f"agent.base_url={server.url}", f"runs_dir={tmp_path}"])
        report = simulate(cfg)
    run = Path(report.run_dir)
    dialogues = [json.loads(line) for line in (run / "dialogues.jsonl").read_text().splitlines()]
    assert len(dialogues) == 3 and all(d["scenario"]["domain"] == "retail" for d in dialogues)
    tasks = {t.id: t for t in load_tasks("retail", "train")}
    without_outputs = [d for d in dialogues if not tasks[d["scenario"]["task_id"]].outputs]
    assert all(d["outcome"]["success"] for d in without_outputs)  # every action made: the database matches
    sft_rows = datasets.load_from_disk(str(run / "sft"))
    dpo_rows = datasets.load_from_disk(str(run / "dpo"))
    assert len(sft_rows) >= len(without_outputs) > 0 and len(dpo_rows) > 0
    assert sft_rows[0]["messages"][0]["content"].startswith("You are a retail customer service agent.")
    assert all(row["rejected"][0]["content"].startswith("SPEAK One moment") and
               row["chosen"][0]["content"].startswith("APICALL") for row in dpo_rows)

    curated = curate(CurateConfig(source=str(run), runs_dir=str(tmp_path)))
    kept = Path(curated.run_dir)
    assert len(datasets.load_from_disk(str(kept / "sft"))) > 0
    base = build_random_model(tmp_path / "base")
    adapter = sft(SFTConfig(max_steps=1, batch_size=2, max_length=2048), ModelConfig(spec=f"hf:{base}"), str(kept / "sft"))
    assert (Path(adapter.path) / "adapter_config.json").is_file()
