"""The embedded model's recipe, kept apart from the other configs: it is part of the model's cache key."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from core.types import StrictModel


class BootstrapConfig(StrictModel):
    """The embedded model: a tiny Llama trained from scratch on ToolWOZ's human training dialogues."""

    budget_tokens: int = Field(
        8_000_000, gt=0,
        description="Training budget in tokens processed (context + targets, no padding); the learning rate decays over it.",
    )
    max_seconds: float = Field(
        7200.0, gt=0, description="Safety cap on wall-clock training time; a build stopped by it says so in bootstrap.json."
    )
    max_steps: int | None = Field(None, gt=0, description="Also stop after this many optimizer steps (None = budget only).")
    max_dialogues: int | None = Field(None, gt=0, description="Use only the first N training dialogues (None = all).")
    vocab_size: int = Field(4096, description="Byte-level BPE vocabulary size (a multiple of 128, for 4-bit).")
    hidden: int = Field(256, description="Hidden size (a multiple of 128, for 4-bit).")
    layers: int = Field(4, gt=0)
    heads: int = Field(4, gt=0)
    intermediate: int = Field(512, description="MLP size (a multiple of 128, for 4-bit).")
    block_size: int = Field(512, gt=0, description="Training window and context length in tokens.")
    carry_tokens: int = Field(32, ge=0, description="Context carried from one training window of a dialogue to the next.")
    batch_size: int = Field(4, gt=0)
    lr: float = Field(2e-3, gt=0, description="Peak learning rate (linear warm-up, cosine decay over the token budget).")
    warmup_steps: int = Field(30, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    bf16: bool | None = Field(
        None, description="bfloat16 matmuls in training (weights stay float32); None = when the CPU has native bf16."
    )
    seed: int = 0

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> "BootstrapConfig":
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        return self

    @field_validator("vocab_size", "hidden", "intermediate")
    @classmethod
    def _multiple_of_128(cls, value: int) -> int:
        if value <= 0 or value % 128:
            raise ValueError(f"must be a positive multiple of 128 (bitsandbytes 4-bit on CPU needs it), got {value}")
        return value
