"""Content hashes used as cache keys: same inputs and same code -> same key, anything else -> a new one."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from core.paths import PROJECT_ROOT


def stable_hash(*parts: Any) -> str:
    """Hash JSON-able parts (pydantic models are dumped first), independent of dict order."""
    dumped = [p.model_dump(mode="json") if hasattr(p, "model_dump") else p for p in parts]
    return hashlib.sha256(json.dumps(dumped, sort_keys=True, default=str).encode()).hexdigest()


def code_hash(*paths: str) -> str:
    """Hash of the project source files (or whole packages) a result depends on.

    Read from disk, not imported, so hashing costs no import of torch or transformers. A
    cached result is stale when any of these files changed, comments included: cheap to
    recompute beats silently reusing output of old logic.
    """
    files = []
    for rel in paths:
        path = PROJECT_ROOT / rel
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return stable_hash([(str(f.relative_to(PROJECT_ROOT)), f.read_text()) for f in files])


# What each cached artefact is made by; one list per artefact, kept here so they stay in sync.
ENV_CODE = ("envs/toolwoz",)
FORMAT_CODE = ("tasks/react.py", "tasks/user_sim.py")
CORPUS_CODE = (*ENV_CODE, *FORMAT_CODE)
EMBEDDED_MODEL_CODE = (*FORMAT_CODE, "envs/toolwoz/substitution.py", "models/pretrain.py", "models/embedded.py")  # plus the corpus's content
# how a model answers (not how it was trained: its weights are hashed on their own)
GENERATION_CODE = ("models/__init__.py", "models/base.py", "models/embedded.py", "models/hf_backend.py", "models/openai_backend.py")
SIMULATION_CODE = (*ENV_CODE, *FORMAT_CODE, "tasks/benchmarks.py", "tasks/function_calling.py", "tasks/rollout.py", "tasks/users.py", "tasks/stops.py", "tasks/evaluation.py",
                   *GENERATION_CODE, "core/types.py")
JOSH_CODE = (*SIMULATION_CODE, "tasks/josh.py")
QUALITY_CODE = ("quality", "tasks/harvest.py", "tasks/stops.py", *ENV_CODE, *FORMAT_CODE)  # plus the suites' content
TRAINING_CODE = ("models/training.py", "models/hf_backend.py")  # plus the base's weights, the rows and the config
SELFTALK_CODE = ("envs/workflows", "tasks/selftalk.py", "tasks/react.py", "tasks/stops.py", *GENERATION_CODE, "core/types.py")
IMAGINE_CODE = ("tasks/imagine.py", *GENERATION_CODE, "core/types.py")
IMPORT_CODE = (*ENV_CODE, *FORMAT_CODE, "tasks/harvest.py", "core/types.py")  # josh-train's trees, replayed here
