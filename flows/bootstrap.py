"""Train the embedded offline model: ToolWOZ human training dialogues -> tiny Llama from scratch.

human dialogues (agent format) -> tokenizer + model trained within a wall-clock budget -> HF model dir
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from core.cache import touch
from models.bootstrap_config import BootstrapConfig
from models.embedded import embedded_model_dir


@task
def train_embedded_model(cfg: BootstrapConfig) -> str:
    """The trained model dir; the cache dir is keyed on config, corpus and recipe code, so reruns are free."""
    path = embedded_model_dir(cfg)
    touch(path)  # in use: `selftrain cache prune` keeps it
    return str(path)


@task
def publish_training_report(model_dir: str) -> dict:
    report = json.loads((Path(model_dir) / "bootstrap.json").read_text())
    curve = ", ".join(f"{x:.2f}" for x in report["losses"][:: max(1, len(report["losses"]) // 20)])
    create_markdown_artifact(
        f"# Embedded model\n`{model_dir}`\n\n"
        f"- dialogues: {report['dialogues']}\n- steps: {report['steps']}\n"
        f"- tokens: {report['tokens']} ({report['tokens_per_s']:.0f} tokens/s over {report['seconds']:.0f} s)\n"
        f"- loss curve: {curve}\n",
        key="embedded-model",
        description="Embedded model training",
    )
    return report


@flow(name="bootstrap")
def bootstrap(cfg: BootstrapConfig = BootstrapConfig()) -> str:
    model_dir = train_embedded_model(cfg)
    publish_training_report(model_dir)
    return model_dir
