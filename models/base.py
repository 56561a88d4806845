"""The one interface every model backend implements: batched chat generation, n samples per prompt."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.config import SamplingConfig
from core.types import Message


@dataclass(frozen=True)
class FunctionCall:
    """A tool call a backend returned natively (OpenAI `tool_calls`): arguments as the model wrote them, unparsed,
    so that malformed JSON reaches the agent format's parser and becomes an error the agent sees."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Generation:
    """One sampled reply with the tokens it cost, so runs can report usage per model."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    tool_calls: tuple[FunctionCall, ...] = ()  # native function calling only


class ChatModel(ABC):
    """A chat model behind a spec string (`embedded`, `hf:...`, `openai:...`)."""

    spec: str

    @abstractmethod
    def generate(
        self, prompts: Sequence[Sequence[Message]], sampling: SamplingConfig, n: int = 1,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> list[list[Generation]]:
        """One list of n generations per prompt, same order as prompts. `tools` (OpenAI tool schemas) are sent
        natively by backends that call functions natively (`native_tools`); the others read them in the prompt."""

    native_tools: bool = False

    @abstractmethod
    def fingerprint(self) -> str:
        """Stable content hash of what decides the outputs; used as a cache key."""

    def close(self) -> None:
        """Free memory / clients. Default: nothing to free."""
