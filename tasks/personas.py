"""Prefect tasks of the personas flow: drawn from the attribute grid, rewritten as prose (cached: API calls cost),
near-duplicates dropped, saved."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
from prefect import task
from prefect.artifacts import create_table_artifact

from core.cache import stored_result
from core.config import PersonaConfig
from core.fingerprint import stable_hash
from core.types import Persona
from models.loading import load_model
from roleplay import personas as grid
from tasks.retries import ENDPOINT_RETRIES


@task
def sample_personas(n: int, seed: int) -> list[Persona]:
    return grid.sample_personas(n, seed)


@task(cache_key_fn=lambda _, p: stored_result(stable_hash("rewrite", [x.id for x in p["drawn"]], p["cfg"].rewrite,
                                                          p["cfg"].rewrite_sampling)),
      **ENDPOINT_RETRIES)
def rewrite_personas(drawn: list[Persona], cfg: PersonaConfig) -> list[Persona]:
    """Each template rewritten as prose by the configured model (cached: API calls cost money)."""
    model = load_model(cfg.rewrite)
    try:
        outputs = model.generate(grid.rewrite_prompts(drawn), cfg.rewrite_sampling)
    finally:
        model.close()
    return [grid.with_prose(p, gens[0].text) for p, gens in zip(drawn, outputs)]


@task
def deduplicate_personas(drawn: list[Persona], threshold: float) -> tuple[list[Persona], dict]:
    kept, dropped = grid.drop_near_duplicates(drawn, threshold)
    stats = grid.diversity(kept, len(dropped))
    create_table_artifact([{"statistic": k, "value": str(v)} for k, v in stats.items()], key="persona-diversity",
                          description="Persona diversity")
    return kept, stats


@task
def save_personas(kept: list[Persona], stats: dict, run_dir: Path) -> Path:
    rows = [{"id": p.id, "attributes": json.dumps(p.attributes), "text": p.text} for p in kept]
    datasets.Dataset.from_list(rows).save_to_disk(str(run_dir / "personas"))
    (run_dir / "diversity.json").write_text(json.dumps(stats, indent=1))
    return run_dir / "personas"
