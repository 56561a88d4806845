"""Model specs, one string per model: `embedded`, `hf:<hub id or local path>`, `openai:<model>`.

What a spec names, where its weights are and what decides its outputs (its fingerprint),
all without loading it: backends import this module, and `models.loading` loads them.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from core.config import ModelConfig
from core.errors import ModelSpecError
from core.fingerprint import stable_hash

VALID_SPECS = "`embedded`, `hf:<hub id or local path>`, `openai:<model>`"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
BIG_FILE = 64 * 2**20  # files above this are fingerprinted by name, size and mtime, not bytes


def parse_spec(spec: str) -> tuple[str, str]:
    """`embedded` -> ("embedded", ""); `hf:x` -> ("hf", "x"); `openai:m` -> ("openai", "m")."""
    if spec == "embedded":
        return "embedded", ""
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("hf", "openai") and rest:
        return kind, rest
    if spec == "agenda":
        raise ModelSpecError(f"`agenda` is a user simulator, not a model: use it as user.spec; models are {VALID_SPECS}")
    raise ModelSpecError(f"unknown model spec {spec!r}; valid forms: {VALID_SPECS}")


def weights_source(cfg: ModelConfig) -> str:
    """The local dir or hub id holding a local model's weights (the embedded model is built on first use)."""
    kind, target = parse_spec(cfg.spec)
    if kind == "openai":
        raise ModelSpecError(f"{cfg.spec!r} is served by an API: training and local loading need `hf:` or `embedded`")
    if kind == "embedded":
        from models.embedded import embedded_model_dir

        return str(embedded_model_dir())
    return target


def model_fingerprint(cfg: ModelConfig) -> str:
    """Hash of what decides a model's outputs, without loading weights.

    Local model and adapter dirs are hashed by content; a hub id is hashed by name only
    (its files are not fetched just to decide whether a cache entry is still valid). The
    embedded model is trained first if it is not in the cache yet (once; ~10 minutes).
    """
    kind, target = parse_spec(cfg.spec)
    parts: dict[str, str | bool | None] = {
        "spec": cfg.spec,
        "base_url": cfg.base_url,
        "adapter": cfg.adapter,
        "load_in_4bit": cfg.load_in_4bit,
    }
    if kind == "embedded":
        from models.embedded import embedded_model_dir

        parts["model_files"] = _hash_path(embedded_model_dir())
    elif kind == "hf" and Path(target).expanduser().exists():
        parts["model_files"] = _hash_path(Path(target).expanduser())
    if cfg.adapter:
        parts["adapter_files"] = _hash_path(Path(cfg.adapter).expanduser())
    return stable_hash(parts)


def _hash_path(path: Path) -> str:
    """Content hash of a file or a directory tree (missing path -> hash of nothing)."""
    if path.is_dir():
        root, files = path, sorted(p for p in path.rglob("*") if p.is_file())
    else:
        root, files = path.parent, [path] if path.is_file() else []
    h = hashlib.sha256()
    for f in files:
        stat = f.stat()
        h.update(f"{f.relative_to(root).as_posix()}\0{stat.st_size}\0".encode())
        if stat.st_size > BIG_FILE:
            h.update(str(stat.st_mtime_ns).encode())
        else:
            with f.open("rb") as fh:
                h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


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
