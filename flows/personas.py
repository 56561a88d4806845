"""Draw simulated-user personas: attribute grid -> [prose by a model] -> near-duplicates dropped -> dataset.

sample -> (rewrite) -> deduplicate -> diversity table -> personas dataset
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from core.config import PersonaConfig
from core.paths import new_run_dir
from core.types import Persona
from tasks.personas import deduplicate_personas, rewrite_personas, sample_personas, save_personas


@flow(name="personas")
def personas(cfg: PersonaConfig = PersonaConfig(), runs_dir: str | None = None) -> list[Persona]:
    """The kept personas, saved with their diversity under `runs_dir` (the calling command's; None: cfg's)."""
    drawn = sample_personas(cfg.n, cfg.seed)
    if cfg.rewrite is not None:
        drawn = rewrite_personas(drawn, cfg)
    kept, stats = deduplicate_personas(drawn, cfg.near_duplicate_threshold)
    save_personas(kept, stats, new_run_dir(runs_dir or cfg.runs_dir, f"personas-{datetime.now():%Y%m%d-%H%M%S}"))
    return kept
