"""Loading the model a spec names (`models.specs`), and checking it can load before a flow starts.

Backends import their heavy libraries (torch, transformers, openai) only when used, so
parsing, checking and fingerprinting a config stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.config import ModelConfig
from core.errors import ModelSpecError
from models.base import ChatModel
from models.specs import gguf_source, hf_source, parse_spec, weights_source


def load_model(cfg: ModelConfig) -> ChatModel:
    kind, target = parse_spec(cfg.spec)
    if kind == "openai":
        from models.openai_backend import OpenAIChatModel

        return OpenAIChatModel(cfg)
    from models.hf_backend import HFChatModel

    return HFChatModel(cfg, weights_source(cfg))


@contextmanager
def loaded_pair(agent_cfg: ModelConfig, user_cfg: ModelConfig) -> Iterator[tuple[ChatModel, ChatModel]]:
    """Agent and user simulator, one model when both configs are the same; freed afterwards."""
    agent = load_model(agent_cfg)
    try:
        user = agent if user_cfg == agent_cfg else load_model(user_cfg)
        try:
            yield agent, user
        finally:
            if user is not agent:
                user.close()
    finally:
        agent.close()


def check_model(cfg: ModelConfig) -> None:
    """Fail fast, before a flow starts, on a spec, path or endpoint that cannot work."""
    kind, target = parse_spec(cfg.spec)
    if kind == "smollm2-toolwoz":
        gguf_source("smollm2", "")  # its base must be installed
    if not gguf_source(kind, target) and kind == "hf":
        hf_source(target)
    if cfg.adapter:
        if kind == "openai":
            raise ModelSpecError(f"adapter {cfg.adapter!r} applies to `hf:`/`embedded` models, not {cfg.spec!r}")
        folder = Path(cfg.adapter).expanduser()
        if not any((folder / name).is_file() for name in ("adapter_config.json", "config.json")):
            raise ModelSpecError(f"adapter {cfg.adapter!r} is neither a LoRA adapter (no adapter_config.json) nor a "
                                 "fully fine-tuned model (no config.json)")
    if kind == "openai":
        from models.openai_backend import check_endpoint

        check_endpoint(cfg)
