"""Model specs, one string per model: `embedded`, `smollm2`, `smollm2-toolwoz`, `hf:<hub id, local path or .gguf file>`,
`openai:<model>`.

What a spec names, where its weights are and what decides its outputs (its fingerprint),
all without loading it: backends import this module, and `models.loading` loads them.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.config import ModelConfig
from core.errors import ModelSpecError
from core.fingerprint import path_hash, stable_hash

VALID_SPECS = "`embedded`, `smollm2`, `smollm2-toolwoz`, `hf:<hub id, local path or .gguf file>`, `openai:<model>`"
BUILT = ("embedded", "smollm2-toolwoz")  # trained here on first use, then cached
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def parse_spec(spec: str) -> tuple[str, str]:
    """`embedded` -> ("embedded", ""); `smollm2` -> ("smollm2", ""); `hf:x` -> ("hf", "x"); `openai:m` -> ("openai", "m")."""
    if spec in ("embedded", "smollm2", "smollm2-toolwoz"):
        return spec, ""
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("hf", "openai") and rest:
        return kind, rest
    if spec == "agenda":
        raise ModelSpecError(f"`agenda` is a user simulator, not a model: use it as user.spec; models are {VALID_SPECS}")
    raise ModelSpecError(f"unknown model spec {spec!r}; valid forms: {VALID_SPECS}")


def weights_source(cfg: ModelConfig) -> str:
    """The local dir or hub id holding a local model's weights (`BUILT` models are built on first use)."""
    kind, target = parse_spec(cfg.spec)
    if kind == "openai":
        raise ModelSpecError(f"{cfg.spec!r} is served by an API: training and local loading need a local model")
    if kind in BUILT:
        return str(built_dir(kind))
    if gguf := gguf_source(kind, target):
        from models.gguf import converted

        return str(converted(gguf))
    return target


def built_dir(kind: str) -> Path:
    """The folder of a model this project trains: `embedded` from scratch (built here on first use),
    `smollm2-toolwoz` from SmolLM2 (built by the flows' `warm-start` stage: its training needs the backends)."""
    if kind == "embedded":
        from models.embedded import embedded_model_dir

        return embedded_model_dir()
    from models.gguf import converted, smollm2_gguf
    from models.warm_start import warm_start_dir

    path = warm_start_dir(converted(smollm2_gguf()), "smollm2")
    if not path.is_dir():
        raise ModelSpecError("smollm2-toolwoz is not built yet: any flow given this spec builds it first (its "
                             "`warm-start` stage), or run `selftrain warm-start`")
    return path


def gguf_source(kind: str, target: str) -> Path | None:
    """The GGUF file a spec names (`smollm2`, or `hf:` with a .gguf path), else None."""
    from models import gguf

    if kind == "smollm2":
        return gguf.smollm2_gguf()
    if kind == "hf" and target.lower().endswith(".gguf"):
        return gguf.gguf_file(target)
    return None


def model_fingerprint(cfg: ModelConfig) -> str:
    """Hash of what decides a model's outputs, without loading weights.

    Local model and adapter dirs are hashed by content; a hub id is hashed by name only
    (its files are not fetched just to decide whether a cache entry is still valid). A `BUILT`
    model is trained first if it is not in the cache yet (once).
    """
    kind, target = parse_spec(cfg.spec)
    parts: dict[str, str | bool | None] = {
        "spec": cfg.spec,
        "base_url": cfg.base_url,
        "adapter": cfg.adapter,
        "load_in_4bit": cfg.load_in_4bit,
    }
    if kind in BUILT:
        parts["model_files"] = path_hash(built_dir(kind))
    elif gguf := gguf_source(kind, target):  # its converted folder's name: a key of the file and the conversion code
        from models.gguf import converted_dir

        parts["model_files"] = converted_dir(gguf).name
    elif kind == "hf" and Path(target).expanduser().exists():
        parts["model_files"] = path_hash(Path(target).expanduser())
    if cfg.adapter:
        parts["adapter_files"] = path_hash(Path(cfg.adapter).expanduser())
    return stable_hash(parts)


def hf_source(target: str) -> str:
    """What to hand `from_pretrained`: an existing model dir, or else a plausible hub id."""
    path = Path(target).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelSpecError(f"{path} is not a Hugging Face model directory (no config.json)")
        return str(path)
    if not HUB_ID.match(target):
        raise ModelSpecError(f"model {target!r} is neither an existing path nor a hub id like `org/name`")
    return target
