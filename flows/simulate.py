"""Simulate conversations with JOSH and harvest them into training data.

[embedded model] -> tasks -> personas -> scenarios -> shards (each cached) -> datasets -> summary
"""

from __future__ import annotations

import time
from datetime import datetime

from prefect import flow
from pydantic import BaseModel

from core.config import SimulateConfig
from core.paths import new_run_dir
from flows.bootstrap import bootstrap
from flows.personas import personas
from models import model_fingerprint
from tasks.users import user_fingerprint
from tasks.evaluation import select_tasks
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
    shards: int
    cached_shards: int


@flow(name="simulate")
def simulate(cfg: SimulateConfig = SimulateConfig()) -> SimulateReport:
    start = time.perf_counter()
    if "embedded" in (cfg.agent.spec, cfg.user.spec):
        bootstrap()
    task_ids = select_tasks(cfg.split, cfg.n_tasks, cfg.seed)
    scenarios = build_scenarios(task_ids, personas(cfg.personas), cfg.personas_per_task, cfg.seed)
    agent_fp, user_fp = model_fingerprint(cfg.agent), user_fingerprint(cfg.user)
    shards = [scenarios[i : i + cfg.shard_size] for i in range(0, len(scenarios), cfg.shard_size)]
    trees, cached = [], 0
    for index, shard in enumerate(shards):
        state = simulate_shard(cfg, shard, index, shard_fingerprint(cfg, shard, agent_fp, user_fp), return_state=True)
        trees += state.result()
        cached += state.name == "Cached"

    run_dir = new_run_dir(cfg.runs_dir, cfg.run_name or f"simulate-{datetime.now():%Y%m%d-%H%M%S}")
    counts = harvest_datasets(trees, cfg, run_dir)
    rows = summary_rows(trees, counts, cfg, cached, len(shards), time.perf_counter() - start)
    publish_summary(rows, cfg, run_dir)
    return SimulateReport(run_dir=str(run_dir), counts=counts, summary=rows, shards=len(shards), cached_shards=cached)
