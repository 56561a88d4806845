"""Content hashes used as cache keys: same inputs and same code -> same key, anything else -> a new one."""

from __future__ import annotations

import hashlib
import inspect
import json
from types import ModuleType
from typing import Any


def stable_hash(*parts: Any) -> str:
    """Hash JSON-able parts (pydantic models are dumped first), independent of dict order."""
    dumped = [p.model_dump(mode="json") if hasattr(p, "model_dump") else p for p in parts]
    return hashlib.sha256(json.dumps(dumped, sort_keys=True, default=str).encode()).hexdigest()


def source_hash(*modules: ModuleType) -> str:
    """Hash of the modules' source: a cached result is stale when the logic that made it changed."""
    return stable_hash([inspect.getsource(m) for m in modules])
