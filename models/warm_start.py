"""A real pretrained model warm-started on ToolWOZ: SmolLM2 fine-tuned (every weight) on the human transcripts the
embedded model learns from, in the agent format, within a token budget. `smollm2-toolwoz` names it: a base for
self-training that starts from language a 135M model already has, instead of a tiny model's.

Built on first use, then cached: keyed on the recipe, the corpus, the base's files and this module's code.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from pydantic import Field

from core.config import Config, SFTConfig
from core.fingerprint import code_fingerprint, path_hash, stable_hash
from core.paths import cache_dir


WARM_START = "warm_start.json"  # what the build saw and did, beside the model


class WarmStartConfig(Config):
    """What `smollm2-toolwoz` is trained from and how."""

    budget_tokens: int = Field(100_000, gt=0, description="Transcript tokens trained on (a seeded draw of whole "
                                                          "dialogues, one pass; each cut at sft.max_length).")
    max_dialogues: int | None = Field(None, gt=0, description="Use only the first N training dialogues (None = all).")
    sft: SFTConfig = Field(default_factory=lambda: SFTConfig(  # every weight, one pass, whole transcripts, one per
        full_finetune=True, load_in_4bit=False, learning_rate=5e-5, epochs=1, max_length=2048, save_steps=20,
        logging_steps=10, batch_size=1))  # step: no padding (transcripts run 900-1,900 tokens), 4x the updates
    seed: int = 0


def warm_start_dir(base: Path, name: str, cfg: WarmStartConfig | None = None) -> Path:
    """Where `base` (a local Hugging Face model folder) warm-started lives in the cache: `<name>-toolwoz-<key>`.
    Built by the flows' `warm-start` stage (models.training.train_warm_start), not here."""
    from envs.toolwoz.data import data_version, load_toolwoz
    from envs.toolwoz.transcripts import corpus_file, corpus_hash

    cfg = cfg or WarmStartConfig()
    corpus = corpus_file(load_toolwoz(), "train", cfg.max_dialogues)
    recipe = cfg.model_dump(exclude={"sft": {"save_steps", "logging_steps"}})  # how often it saves is no recipe
    key = stable_hash(recipe, data_version(), corpus_hash(corpus), path_hash(base), code_fingerprint("models.warm_start"))
    return cache_dir() / "models" / f"{name}-toolwoz-{key[:12]}"


def transcript_rows(cfg: WarmStartConfig) -> list[dict]:
    """Each human transcript as the agent sees it (compact prompt, ReAct format): the rows SFT trains on."""
    from core.records import read_jsonl
    from envs.toolwoz.data import load_toolwoz
    from envs.toolwoz.transcripts import corpus_file
    from models.pretrain import agent_view

    data = load_toolwoz()
    return [{"messages": [{"role": m.role, "content": m.content} for m in agent_view(d, data.tool_schemas)]}
            for d in read_jsonl(corpus_file(data, "train", cfg.max_dialogues))]


def token_length(tokenizer, row: dict, max_length: int) -> int:
    return min(len(tokenizer.apply_chat_template(row["messages"], return_dict=True)["input_ids"]), max_length)


def draw_within_budget(n_rows: int, length: Callable[[int], int], budget: int, seed: int) -> dict[int, int]:
    """A seeded shuffle of the rows, taken while their tokens fit the budget (at least one row): row -> tokens. Only
    the rows looked at are measured: a small budget never tokenizes the whole corpus."""
    order = list(range(n_rows))
    random.Random(seed).shuffle(order)
    drawn: dict[int, int] = {}
    for i in order:
        tokens = length(i)
        if drawn and sum(drawn.values()) + tokens > budget:
            break
        drawn[i] = tokens
    return drawn
