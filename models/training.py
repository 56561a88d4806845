"""QLoRA training with trl: SFT on golden paths, then DPO (or KTO) on juxtaposed outcomes.

The base loads in 4-bit NF4 with double quantisation and LoRA adapters train on every linear
layer. SFT puts the loss on the agent's turns only (the chat template marks them as
generations). DPO and KTO continue the SFT adapter; trl keeps a frozen copy of it as the
reference, so the SFT policy is what the preference step may not drift far from.

Each run writes into its own folder: `checkpoints/` (every `save_steps`; a run started again
resumes from the last one), then `adapter/` and `training.json` (config, data fingerprint,
loss curve). The same code runs on a GPU (bf16 where it has it) and on the CPU. No Prefect.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import torch
from transformers import TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME

from core.config import PreferenceConfig, SFTConfig, TrainConfig
from core.errors import ConfigError
from core.fingerprint import stable_hash
from models.hf_backend import is_full_model, load_adapter, load_causal_lm
from models.warm_start import WARM_START, WarmStartConfig, draw_within_budget, token_length, transcript_rows

ADAPTER, CHECKPOINTS, REPORT = "adapter", "checkpoints", "training.json"


@dataclass
class TrainReport:
    kind: str  # "sft", "dpo" or "kto"
    base: str
    data_fingerprint: str
    rows: int
    steps: int = 0
    seconds: float = 0.0
    resumed_from_step: int = 0  # 0 = started from scratch
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss)
    device: str = "cpu"
    config: dict = field(default_factory=dict)


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def bf16(cfg: TrainConfig, on: str) -> bool:
    if cfg.bf16 is not None:
        return cfg.bf16
    return on == "cuda" and torch.cuda.is_bf16_supported()


def last_checkpoint(out: Path) -> Path | None:
    """The newest whole checkpoint. The trainer writes `trainer_state.json` last: a folder a kill cut short (weights,
    no state) is passed over, and the run resumes from the one before it."""
    def whole(folder: Path) -> bool:
        try:
            return bool(json.loads((folder / TRAINER_STATE_NAME).read_text()))
        except (OSError, ValueError):
            return False

    found = [p for p in (out / CHECKPOINTS).glob("checkpoint-*") if whole(p)]
    return max(found, key=lambda p: int(p.name.split("-")[1]), default=None)


def trained(out: Path) -> TrainReport | None:
    """The report of a finished run in `out`, or None."""
    path = out / REPORT
    if not path.is_file():
        return None
    raw = json.loads(path.read_text())
    return TrainReport(**{**raw, "curve": [tuple(x) for x in raw["curve"]]})


class _Progress(TrainerCallback):
    """Collects the loss curve and hands each log line (step, total, loss, seconds left) to `on_log`."""

    def __init__(self, report=None):
        self.curve: list[tuple[int, float]] = []
        self.report = report
        self.start = time.perf_counter()
        self.first_step: int | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        self.curve.append((state.global_step, float(logs["loss"])))
        if self.first_step is None:
            self.first_step = state.global_step
        if self.report:
            done = max(state.global_step - self.first_step, 1)
            left = (time.perf_counter() - self.start) / done * (state.max_steps - state.global_step)
            self.report(state.global_step, state.max_steps, float(logs["loss"]), left)


def _common(cfg: TrainConfig, out: Path, on: str) -> dict:
    """trl/transformers arguments every run shares."""
    steps = {"max_steps": cfg.max_steps} if cfg.max_steps else {"num_train_epochs": cfg.epochs}
    return dict(output_dir=str(out / CHECKPOINTS), per_device_train_batch_size=cfg.batch_size,
                gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate, max_length=cfg.max_length,
                save_steps=cfg.save_steps, save_total_limit=2, logging_steps=cfg.logging_steps, seed=cfg.seed,
                bf16=bf16(cfg, on), use_cpu=on == "cpu", activation_checkpointing=cfg.gradient_checkpointing,
                report_to=[], disable_tqdm=False, **steps)


def _lora(cfg: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def _fit(trainer, kind: str, base: str, data: datasets.Dataset, data_fingerprint: str, cfg: TrainConfig,
         out: Path, progress: _Progress, on: str, stop_after: int | None) -> TrainReport:
    """Train (resuming from the last checkpoint in `out`), save the adapter and the report."""
    resume = last_checkpoint(out)
    trainer.add_callback(_KeepAdapterDtype(trainer.model))
    if stop_after:
        trainer.add_callback(_StopAfter(stop_after))
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    report = TrainReport(kind=kind, base=base, data_fingerprint=data_fingerprint, rows=len(data),
                         steps=trainer.state.global_step, seconds=time.perf_counter() - start,
                         resumed_from_step=int(resume.name.split("-")[1]) if resume else 0,
                         curve=progress.curve, device=on, config=cfg.model_dump())
    if stop_after and trainer.state.global_step < trainer.state.max_steps:
        return report  # interrupted on purpose: checkpoints stay, no adapter yet
    trainer.save_model(str(out / ADAPTER))
    (out / REPORT).write_text(json.dumps(asdict(report), indent=1))
    return report


class _KeepAdapterDtype(TrainerCallback):
    """trl trains QLoRA adapters in bf16, but loading a checkpoint brings them back in float32: cast them
    back once training begins, so a resumed run computes what the uninterrupted one would have."""

    def __init__(self, model):
        self.dtypes = {name: p.dtype for name, p in model.named_parameters() if p.requires_grad}

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        for name, param in model.named_parameters():
            if name in self.dtypes and param.dtype != self.dtypes[name]:
                param.data = param.data.to(self.dtypes[name])
                for key, value in (optimizer.state.get(param, {}) if optimizer else {}).items():
                    if key != "step" and torch.is_tensor(value) and value.is_floating_point():
                        optimizer.state[param][key] = value.to(param.dtype)


class _StopAfter(TrainerCallback):
    """Stop (with a checkpoint) after `step` steps: how tests interrupt a run the way a crash would."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_save = control.should_training_stop = True


def train_sft(base: str, data: datasets.Dataset, data_fingerprint: str, cfg: SFTConfig, out: Path, on_log=None,
              stop_after: int | None = None) -> TrainReport:
    """LoRA SFT of `base` on conversational rows (`messages`), loss on assistant turns only (or every weight:
    `full_finetune`)."""
    from trl import SFTConfig as TrlSFTConfig, SFTTrainer

    on = device()
    tokenizer, model = load_causal_lm(base, cfg.load_in_4bit and not cfg.full_finetune, on)
    progress = _Progress(on_log)
    args = TrlSFTConfig(**_common(cfg, out, on), assistant_only_loss=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data.select_columns(["messages"]), processing_class=tokenizer,
                         peft_config=None if cfg.full_finetune else _lora(cfg), callbacks=[progress])
    if len(trainer.train_dataset) == 0:  # trl drops the rows whose agent turns were all cut off
        raise ConfigError(f"every one of the {len(data)} SFT rows is cut at max_length={cfg.max_length} tokens before "
                          "its first agent turn, so there is nothing to learn: raise sft.max_length (tool results such "
                          "as tau-bench's order records are long)")
    return _fit(trainer, "sft", base, data, data_fingerprint, cfg, out, progress, on, stop_after)


def train_preferences(base: str, sft_adapter: Path | None, data: datasets.Dataset, data_fingerprint: str,
                      cfg: PreferenceConfig, out: Path, on_log=None, stop_after: int | None = None) -> TrainReport:
    """DPO on (prompt, chosen, rejected) rows or KTO on (prompt, completion, label) rows, continuing the SFT
    adapter (trl keeps a frozen copy as the reference); without one, a new LoRA against the base. A fully
    fine-tuned SFT model is the starting point itself; with `full_finetune` every weight trains."""
    on = device()
    parent_full = sft_adapter is not None and is_full_model(sft_adapter)
    start = str(sft_adapter) if parent_full else base
    tokenizer, model = load_causal_lm(start, cfg.load_in_4bit and not cfg.full_finetune, on)
    peft_config = None
    if sft_adapter is not None and not parent_full:
        model = load_adapter(model, sft_adapter, trainable=not cfg.full_finetune)
        if cfg.full_finetune:
            model = model.merge_and_unload()
    elif not cfg.full_finetune:
        peft_config = _lora(cfg)
    progress = _Progress(on_log)
    if cfg.method == "dpo":
        from trl import DPOConfig, DPOTrainer as Trainer

        losses = dict(loss_type=["sigmoid", "sft"], loss_weights=[1.0, cfg.sft_weight]) if cfg.sft_weight else {}
        args, columns = DPOConfig(**_common(cfg, out, on), beta=cfg.beta, **losses), ["prompt", "chosen", "rejected"]
    else:
        from trl import KTOConfig as KTOArgs, KTOTrainer as Trainer

        args, columns = KTOArgs(**_common(cfg, out, on), beta=cfg.beta), ["prompt", "completion", "label"]
    trainer = Trainer(model=model, args=args, train_dataset=data.select_columns(columns), processing_class=tokenizer,
                      peft_config=peft_config, callbacks=[progress])
    return _fit(trainer, cfg.method, base, data, data_fingerprint, cfg, out, progress, on, stop_after)


def train_warm_start(cfg: WarmStartConfig, base: Path, out: Path) -> None:
    """Full fine-tuning of `base` on a budget's draw of the ToolWOZ transcripts (models/warm_start.py), loss on the
    agent's turns; the whole model lands in `out`, with `warm_start.json` saying what it saw."""
    from transformers import AutoTokenizer

    rows, tokenizer = transcript_rows(cfg), AutoTokenizer.from_pretrained(base)
    drawn = draw_within_budget(len(rows), lambda i: token_length(tokenizer, rows[i], cfg.sft.max_length),
                               cfg.budget_tokens, cfg.seed)
    report = train_sft(str(base), datasets.Dataset.from_list([rows[i] for i in drawn]), stable_hash(list(drawn)), cfg.sft,
                       out / "run")
    for path in (out / "run" / ADAPTER).iterdir():
        shutil.move(path, out / path.name)
    shutil.rmtree(out / "run")
    (out / WARM_START).write_text(json.dumps(
        {"base": str(base), "dialogues": len(drawn), "tokens": sum(drawn.values()), "steps": report.steps,
         "resumed_from_step": report.resumed_from_step, "seconds": report.seconds, "losses": [loss for _, loss in report.curve], "config": cfg.model_dump()}, indent=1))
