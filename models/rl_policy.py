"""The policy online RL trains: the local chat model that generates, with a trainable LoRA; its checkpoints and output.

Where it starts: from an SFT LoRA adapter, that adapter keeps training (the reference, with the
adapter off, is then the base); from the base or a fully fine-tuned model, a new LoRA on top (the
reference is the starting model itself). Generation and training share the weights, so every
step is on-policy; the prefix cache is cleared after each update.

Output, like the other training stages': a folder used as `adapter=` on the base. A LoRA on the base
is saved as an adapter; a LoRA on a fully fine-tuned model is merged into it and saved whole.
A checkpoint (every `save_every` steps) holds the adapter, the optimizer state and the step records:
with the per-step sampling seeds, a resumed run computes what the uninterrupted one would have.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from core.config import ModelConfig
from core.paths import write_atomically
from models.hf_backend import HFChatModel, is_full_model, load_adapter
from models.specs import weights_source

CHECKPOINT, OUTPUT, REPORT = "checkpoint", "adapter", "rl.json"


def trainable_policy(agent: ModelConfig, start: Path | None, lora_r: int, lora_alpha: int,
                     checkpoint: Path | None = None) -> HFChatModel:
    """The agent, starting from `start` (an SFT adapter or whole model; None = the base), with trainable LoRA
    weights (those of `checkpoint` when resuming); it returns its sampled tokens (`keep_ids`)."""
    from peft import LoraConfig, get_peft_model

    continue_lora = start is not None and not is_full_model(start)
    chat = HFChatModel(agent.model_copy(update={"adapter": str(start) if start and not continue_lora else None}),
                       weights_source(agent))
    if checkpoint is not None:
        chat.model = load_adapter(chat.model, checkpoint / OUTPUT, trainable=True)
    elif continue_lora:
        chat.model = load_adapter(chat.model, start, trainable=True)
    else:
        chat.model = get_peft_model(chat.model, LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0,
                                                           target_modules="all-linear", task_type="CAUSAL_LM"))
    chat.model.eval()
    chat.keep_ids = True
    return chat


def optimizer_for(policy: HFChatModel, learning_rate: float, checkpoint: Path | None = None) -> torch.optim.Optimizer:
    optimizer = torch.optim.AdamW([p for p in policy.model.parameters() if p.requires_grad], lr=learning_rate)
    if checkpoint is not None:
        optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
    return optimizer


def save_checkpoint(out: Path, policy: HFChatModel, optimizer, records: list) -> None:
    """Written beside, then swapped in: a run killed while saving still has its previous checkpoint."""
    tmp = out / f".{CHECKPOINT}-new"
    shutil.rmtree(tmp, ignore_errors=True)
    policy.model.save_pretrained(str(tmp / OUTPUT))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "records.json").write_text(json.dumps([asdict(r) for r in records], indent=1))
    old = out / f".{CHECKPOINT}-old"
    shutil.rmtree(old, ignore_errors=True)
    if (out / CHECKPOINT).exists():
        (out / CHECKPOINT).rename(old)
    tmp.rename(out / CHECKPOINT)
    shutil.rmtree(old, ignore_errors=True)


def last_checkpoint(out: Path) -> tuple[Path, list[dict]] | None:
    """The checkpoint to resume from and its step records, or None."""
    path = out / CHECKPOINT
    if not (path / "records.json").is_file():
        return None
    return path, json.loads((path / "records.json").read_text())


def save_output(out: Path, policy: HFChatModel, start: Path | None, report: dict) -> Path:
    """The trained policy as `adapter=` for the base: the LoRA itself, or merged into a fully fine-tuned start. `out`
    is a build folder (core.cache.build_once): a save cut short is redone when the run resumes."""
    target = out / OUTPUT
    shutil.rmtree(target, ignore_errors=True)
    if start is not None and is_full_model(start):
        merged = policy.model.merge_and_unload()
        merged.save_pretrained(str(target))
        policy.tokenizer.save_pretrained(str(target))
    else:
        policy.model.save_pretrained(str(target))
    write_atomically(out / REPORT, json.dumps(report, indent=1))  # last: its presence means finished
    return target
