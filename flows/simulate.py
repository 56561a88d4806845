"""Simulate conversations with JOSH and harvest them into training data.

[embedded model] -> tasks -> personas -> scenarios -> shards (each cached; local, Dask or Ray) -> datasets -> summary
"""

from __future__ import annotations

import time
from datetime import datetime

from prefect import flow
from pydantic import BaseModel

from roleplay.config import SimulateConfig
from core.paths import new_run_dir
from core.types import JoshTree, Scenario
from flows.bootstrap import build_models
from flows.personas import personas
from models.specs import model_fingerprint
from roleplay.users import user_fingerprint
from envs.registry import select_tasks
from tasks.runners import task_runner
from tasks.simulation import (
    build_scenarios,
    harvest_datasets,
    publish_summary,
    shard_fingerprint,
    simulate_shard,
    summary_rows,
)


class SimulateReport(BaseModel):
    run_dir: str
    counts: dict[str, int]  # rows per saved dataset
    summary: list[dict[str, str]]
    cached: bool  # every shard's trees were read from storage
    shards: int
    cached_shards: int


@flow(name="simulate-shards", persist_result=False)
def simulate_shards(cfg: SimulateConfig, shards: list[list[Scenario]], fingerprints: list[str]) -> list[tuple[list[JoshTree], bool]]:
    """Every shard's JOSH trees, and whether they came from the cache; shards run on the configured task runner."""
    futures = [simulate_shard.submit(cfg, shard, index, fp) for index, (shard, fp) in enumerate(zip(shards, fingerprints))]
    return [(future.result(), future.state.name == "Cached") for future in futures]


@flow(name="simulate")
def simulate(cfg: SimulateConfig = SimulateConfig()) -> SimulateReport:
    start = time.perf_counter()
    build_models(cfg.agent.spec, cfg.user.spec)
    task_ids = select_tasks(cfg.benchmark, cfg.split, cfg.n_tasks, cfg.seed, cfg.task_draw)
    scenarios = build_scenarios(cfg.benchmark, task_ids, personas(cfg.personas, cfg.runs_dir), cfg.personas_per_task, cfg.seed)
    agent_fp, user_fp = model_fingerprint(cfg.agent), user_fingerprint(cfg.user)
    shards = [scenarios[i : i + cfg.shard_size] for i in range(0, len(scenarios), cfg.shard_size)]
    fingerprints = [shard_fingerprint(cfg, shard, agent_fp, user_fp) for shard in shards]
    done = simulate_shards.with_options(task_runner=task_runner(cfg.runner))(cfg, shards, fingerprints)
    trees = [tree for shard_trees, _ in done for tree in shard_trees]
    cached = sum(was_cached for _, was_cached in done)

    run_dir = new_run_dir(cfg.runs_dir, cfg.run_name or f"simulate-{datetime.now():%Y%m%d-%H%M%S}")
    counts = harvest_datasets(trees, cfg, run_dir)
    rows = summary_rows(trees, counts, cfg, cached, len(shards), time.perf_counter() - start)
    publish_summary(rows, cfg, run_dir)
    return SimulateReport(run_dir=str(run_dir), counts=counts, summary=rows, cached=cached == len(shards),
                          shards=len(shards), cached_shards=cached)
