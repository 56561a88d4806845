"""Prefect tasks of the bootstrap and warm-start flows: each model this project trains, built once in a process of
its own (a cache hit afterwards), and ToolWOZ's parsed tasks that their cache keys read."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact

from core.cache import build_once, reuse
from core.processes import in_fresh_process
from envs.toolwoz.data import _cache_path as toolwoz_task_file, load_toolwoz
from models.bootstrap_config import BootstrapConfig
from models.embedded import embedded_model_dir, embedded_model_path
from models.gguf import converted, smollm2_gguf
from models.warm_start import WarmStartConfig, warm_start_dir


@task
def train_embedded_model(cfg: BootstrapConfig) -> str:
    """The trained model dir; the cache dir is keyed on config, corpus and recipe code, so reruns are free."""
    path = embedded_model_path(cfg)
    if not reuse(path):  # in use from now: `selftrain cache prune` keeps it
        in_fresh_process(embedded_model_dir, cfg)
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


CPU_TOKENS_PER_S = 35  # SmolLM2 full fine-tuning on 2 CPU cores, measured (one 1,772-token step in 51 s)


@task
def warm_start_smollm2(cfg: WarmStartConfig) -> str:
    """SmolLM2 fine-tuned on ToolWOZ's transcripts (models/warm_start.py), keyed like the embedded model."""
    from models.training import train_warm_start  # torch: only when building

    base = converted(smollm2_gguf())
    path = warm_start_dir(base, "smollm2", cfg)
    if not reuse(path):
        print(f"Warm-starting SmolLM2 on ToolWOZ transcripts (first use only): {cfg.budget_tokens / 1e6:.2f}M tokens "
              f"(about {cfg.budget_tokens / CPU_TOKENS_PER_S / 60:.0f} min on 2 CPU cores, minutes on a GPU). "
              f"It is cached afterwards; stopped, it goes on from its last checkpoint (every {cfg.sft.save_steps} steps).",
              file=sys.stderr)
        in_fresh_process(build_once, path, partial(train_warm_start, cfg, base), True)
    return str(path)


def _parse_toolwoz() -> None:
    load_toolwoz()


def build_toolwoz_tasks() -> None:
    """ToolWOZ's tasks, parsed once from MultiWOZ's raw JSON (~760 MB) into the cache, in a process of its own: the
    parse leaves ~1.1 GiB of heap a process does not give back (0.56 -> 1.65 GiB, 1.61 after `release`), while
    reading the parsed file afterwards takes ~0.2 GiB."""
    if not toolwoz_task_file().is_file():
        in_fresh_process(_parse_toolwoz)
