"""Evaluate an agent against a user simulator on a ToolWOZ slice.

[embedded model] -> tasks -> oracle ceiling -> simulate (cached) -> metrics -> dataset + report
"""

from __future__ import annotations

from datetime import datetime
from prefect import flow
from pydantic import BaseModel

from core.config import EvalConfig
from core.paths import new_run_dir
from flows.bootstrap import bootstrap
from models import model_fingerprint
from quality.metrics import Ceiling, EvalMetrics, ceiling, evaluation_metrics
from tasks.evaluation import (
    metrics_table,
    oracle_rewards,
    publish_report,
    save_dialogues,
    select_tasks,
    simulate_dialogues,
    simulation_fingerprint,
)


class EvalReport(BaseModel):
    metrics: EvalMetrics
    ceiling: Ceiling  # on the evaluated tasks
    split_ceiling: Ceiling
    table: list[dict[str, str]]
    run_dir: str
    cached: list[str]  # stages whose stored result was reused


@flow(name="evaluate")
def evaluate(cfg: EvalConfig = EvalConfig()) -> EvalReport:
    if "embedded" in (cfg.agent.spec, cfg.user.spec):
        bootstrap()  # trains the embedded model on first use; a cache hit afterwards
    task_ids = select_tasks(cfg.split, cfg.n_tasks, cfg.seed)
    oracle = oracle_rewards(cfg.split, return_state=True)
    fingerprint = simulation_fingerprint(cfg, task_ids, model_fingerprint(cfg.agent), model_fingerprint(cfg.user))
    simulated = simulate_dialogues(cfg, task_ids, fingerprint, return_state=True)
    dialogues = simulated.result()

    metrics = evaluation_metrics(dialogues)
    per_task = oracle.result()
    slice_ceiling, split_ceiling = ceiling([per_task[i] for i in task_ids]), ceiling(list(per_task.values()))
    table = metrics_table(metrics, slice_ceiling, split_ceiling)
    run_dir = new_run_dir(cfg.runs_dir, cfg.run_name or f"evaluate-{datetime.now():%Y%m%d-%H%M%S}-{fingerprint[:8]}")
    save_dialogues(dialogues, run_dir)
    publish_report(table, cfg, run_dir)
    return EvalReport(
        metrics=metrics,
        ceiling=slice_ceiling,
        split_ceiling=split_ceiling,
        table=table,
        run_dir=str(run_dir),
        cached=[name for name, state in (("oracle_rewards", oracle), ("simulate_dialogues", simulated)) if state.name == "Cached"],
    )
