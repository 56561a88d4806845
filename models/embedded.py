"""The offline default model: a tiny Llama built locally, so every flow runs without a hub.

`embedded` is trained here from scratch on ToolWOZ's human training dialogues (see
`models/pretrain.py`) on first use. `build_random_model` makes an untrained one of the same
kind for tests: it exercises the real Hugging Face code paths in milliseconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

from core.cache import build_once
from core.fingerprint import code_fingerprint, stable_hash
from core.paths import cache_dir
from models.bootstrap_config import BootstrapConfig
from models.tokenizer import build_tokenizer


def build_random_model(
    path: Path,
    hidden: int = 128,
    layers: int = 2,
    heads: int = 4,
    intermediate: int = 256,
    max_position_embeddings: int = 2048,
    seed: int = 0,
) -> Path:
    """Save a random-initialised tiny Llama + tokenizer as a standard Hugging Face model dir.

    Embeddings are untied: with tied random embeddings greedy decoding just repeats the
    last prompt token, which would make every greedy test pass trivially.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if hidden % 128 or intermediate % 128:
        raise ValueError(f"hidden ({hidden}) and intermediate ({intermediate}) must be multiples of 128 for 4-bit")
    tokenizer = build_tokenizer(max_position_embeddings)
    config = LlamaConfig(
        vocab_size=-(-len(tokenizer) // 128) * 128,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _keyed(cfg: BootstrapConfig) -> tuple[Path, Path]:
    """The model's cache dir and its training corpus.

    Keyed on the bootstrap config, the training corpus's content and the code of
    `models/pretrain.py` with all it imports, so a changed recipe, format or corpus trains a
    new model and an unchanged one is reused (this file's messages are not part of the key).
    """
    from envs.toolwoz.data import data_version, load_toolwoz
    from envs.toolwoz.transcripts import corpus_file, corpus_hash

    corpus = corpus_file(load_toolwoz(), "train", cfg.max_dialogues)
    key = stable_hash(cfg, data_version(), corpus_hash(corpus), code_fingerprint("models.pretrain"))[:12]
    return cache_dir() / "models" / f"embedded-{key}", corpus


def embedded_model_path(cfg: BootstrapConfig | None = None) -> Path:
    """Where the trained embedded model is, or will be once built (nothing is built here)."""
    return _keyed(cfg or BootstrapConfig())[0]


def embedded_model_dir(cfg: BootstrapConfig | None = None) -> Path:
    """The trained embedded model's dir under the cache, trained on first use.

    Trained into a temp dir beside it and renamed into place: a killed build never leaves a
    half model.
    """
    cfg = cfg or BootstrapConfig()
    final, corpus = _keyed(cfg)
    if final.is_dir():
        return final
    from models.pretrain import build  # torch: only when building

    print(f"Building the embedded model (first use only): ToolWOZ training dialogues, then "
          f"{cfg.budget_tokens / 1e6:.1f}M tokens of training (about an hour on 2 CPU cores, a minute on a GPU). "
          f"It is cached afterwards.", file=sys.stderr)
    return build_once(final, lambda folder: build(cfg, corpus, folder))
