"""The one interface every model backend implements: batched chat generation, n samples per prompt."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.config import SamplingConfig
from core.types import Generation, Message


@dataclass(frozen=True)
class Sample(Generation):
    """A generation with its exact tokens, for training on what was generated (online RL): the prompt as the model
    saw it (after any cut to fit its context) and the sampled completion (its end-of-sequence token included)."""

    prompt_ids: tuple[int, ...] = ()
    completion_ids: tuple[int, ...] = ()


class ChatModel(ABC):
    """A chat model behind a spec string (`embedded`, `hf:...`, `openai:...`)."""

    spec: str

    @abstractmethod
    def generate(
        self, prompts: Sequence[Sequence[Message]], sampling: SamplingConfig, n: int = 1,
        tools: Sequence[dict[str, Any]] | None = None, grammar: str | None = None,
    ) -> list[list[Generation]]:
        """One list of n generations per prompt, same order as prompts. `tools` (OpenAI tool schemas) are sent
        natively by backends that call functions natively (the agent format decides when to pass them); `grammar`
        (llguidance Lark, `formats/grammar.py`) holds a local model's decoding to it (`constrained=true`)."""

    @abstractmethod
    def fingerprint(self) -> str:
        """Stable content hash of what decides the outputs; used as a cache key."""

    def close(self) -> None:
        """Free memory / clients. Default: nothing to free."""
